from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sandbox.app import create_app
from sandbox.spec import Contract, load_contract

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_KEY = "qpk_test_sandbox"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`quimbi-sandbox serve` in a child process on a free loopback port."""

    def __init__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = command or [sys.executable, "-m", "sandbox", "serve"]
        self.command = [*base, "--host", "127.0.0.1", "--port", str(self.port), *args]
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 20.0) -> ServerProcess:
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=self.cwd,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.process.stdout.read()}")
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
        if self.process.stdout:
            self.process.stdout.close()
        return self.process.returncode

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


@pytest.fixture
def app():
    return create_app(seed=7)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth() -> dict[str, str]:
    return {"X-API-Key": DEFAULT_KEY}
