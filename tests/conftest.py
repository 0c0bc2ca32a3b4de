from __future__ import annotations

import fnmatch
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sandbox.app import create_app
from sandbox.spec import Contract, load_contract
from tests.dockerfile import Stage, parse_dockerfile
from tests.standalone import SiblingGuard

ROOT = Path(__file__).resolve().parents[1]

SIBLING_GUARD = SiblingGuard(ROOT)
SIBLING_GUARD.install()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A refused read may have been caught by the code under test; the run fails anyway.
    if SIBLING_GUARD.refused:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        listed = "\n  ".join(sorted(set(SIBLING_GUARD.refused)))
        print(f"\nTests read files beside the repository:\n  {listed}", file=sys.stderr)


DEFAULT_KEY = "qpk_test_sandbox"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def serve_must_refuse(*args: str, says: str) -> None:
    """`quimbi-sandbox serve ARGS` exits 2 with ``says`` on stderr and no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "serve", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.stderr


def eventually(fetch, done, timeout: float = 5.0):
    """``fetch()`` until ``done(result)`` or ``timeout`` s; the last result either way.

    For what one sandbox process reads of another's journal or coverage counts over
    Redis: each process writes those a few milliseconds after its answer (README,
    "Shared state"), so a read right after the last request may not see it yet."""
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.02)


class ServerProcess:
    """`quimbi-sandbox serve` in a child process on a free loopback port."""

    def __init__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        command: list[str] | None = None,
        bind_flags: bool = True,
        host: str = "127.0.0.1",
    ) -> None:
        """``bind_flags=False`` runs ``command`` exactly, binding by environment instead.
        ``host`` may be another loopback address (127.0.0.2: a "remote-looking" target)."""
        self.port = free_port(host)
        self.url = f"http://{host}:{self.port}"
        base = command or [sys.executable, "-m", "sandbox", "serve"]
        bind = {"QUIMBI_SANDBOX_HOST": host, "QUIMBI_SANDBOX_PORT": str(self.port)}
        if bind_flags:
            flags = ["--host", host, "--port", str(self.port)]
            self.command = [*base, *flags, *args]
            self.env = {**os.environ, **(env or {})}
        else:
            self.command = [*base, *args]
            self.env = {**os.environ, **(env or {}), **bind}
        self.cwd = cwd
        self.process: subprocess.Popen[str] | None = None
        # Everything the server printed (stdout and stderr), read as it comes: a pipe
        # nobody reads fills up, and a server writing an access log would then block.
        self.lines: list[str] = []
        self._printed = threading.Condition()
        self._reader: threading.Thread | None = None

    def start(self, timeout: float = 20.0) -> ServerProcess:
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=self.cwd,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._reader.join(timeout=5)
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                if requests.get(f"{self.url}/_sandbox/health", timeout=1).ok:
                    return self
            except requests.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not answer within {timeout}s")

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._reader is not None:
            self._reader.join(timeout=10)
        if self.process.stdout:
            self.process.stdout.close()
        return self.process.returncode

    def _read_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            with self._printed:
                self.lines.append(line)
                self._printed.notify_all()

    def output(self) -> str:
        with self._printed:
            return "".join(self.lines)

    def wait_for_line(self, needle: str, timeout: float = 10.0) -> str:
        """The first line printed that contains ``needle`` (waiting for it to come)."""
        deadline = time.monotonic() + timeout
        with self._printed:
            while True:
                for line in self.lines:
                    if needle in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no line with {needle!r}; printed:\n{self.output()}")
                self._printed.wait(left)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def post(
        self, path: str, body: object, key: str | None = DEFAULT_KEY, **kw
    ) -> requests.Response:
        headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
        if key is not None:
            headers["X-API-Key"] = key
        return requests.post(
            self.url + path, data=json.dumps(body), headers=headers, timeout=10, **kw
        )

    def get(self, path: str, key: str | None = DEFAULT_KEY, **kw) -> requests.Response:
        headers = dict(kw.pop("headers", {}))
        if key is not None:
            headers["X-API-Key"] = key
        return requests.get(self.url + path, headers=headers, timeout=10, **kw)


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory) -> Iterator[str]:
    """QUIMBI_TEST_REDIS_URL (scripts/test.sh starts one), else a redis-server of our own."""
    url = os.environ.get("QUIMBI_TEST_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "Redis is needed: set QUIMBI_TEST_REDIS_URL or install redis-server "
            "(scripts/test.sh does both)"
        )
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server_url) -> str:
    """A Redis database emptied for this test."""
    import redis

    redis.Redis.from_url(redis_server_url).flushdb()
    return redis_server_url


@pytest.fixture(scope="session")
def contract() -> Contract:
    return load_contract()


@pytest.fixture(scope="session")
def server() -> Iterator[ServerProcess]:
    """One real server for the session; tests that need their own start one.

    Rate limits are off here (the headers still come): many tests share its keys, and
    the rate-limit tests run their own servers and apps.
    """
    with ServerProcess("--seed", "7", "--rate-limit", "off") as running:
        yield running


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built once for the whole session."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("quimbi_sandbox-*.whl")
    return built


@pytest.fixture(scope="session")
def runtime_stage() -> Stage:
    """The Dockerfile's last stage: what the image runs."""
    return parse_dockerfile(ROOT / "Dockerfile")[-1]


def dockerfile_install_command(stage: Stage, python: Path, wheel: Path) -> list[str]:
    """The runtime stage's `pip install` of the wheel, for ``python``'s pip and ``wheel``."""
    for run in stage.all("RUN"):
        words = shlex.split(run)
        if words[:2] != ["pip", "install"]:
            continue
        command = words[: words.index("&&")] if "&&" in words else words
        targets = [word for word in command if word.endswith(".whl")]
        assert len(targets) == 1, f"expected one wheel in {run!r}"
        assert fnmatch.fnmatch(wheel.name, Path(targets[0]).name), (wheel.name, targets[0])
        return [
            str(python),
            "-m",
            *(str(wheel) if word == targets[0] else word for word in command),
        ]
    raise AssertionError("the runtime stage has no `RUN pip install <wheel>`")


@pytest.fixture(scope="session")
def installed_wheel(tmp_path_factory, wheel, runtime_stage) -> Path:
    """A fresh venv with the wheel installed the way the Dockerfile installs it; its bin/."""
    env_dir = tmp_path_factory.mktemp("wheel-venv") / "venv"
    venv.create(env_dir, with_pip=True)
    command = dockerfile_install_command(runtime_stage, env_dir / "bin" / "python", wheel)
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return env_dir / "bin"


@pytest.fixture
def app():
    return create_app(seed=7)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth() -> dict[str, str]:
    return {"X-API-Key": DEFAULT_KEY}
