"""What the benchmark drives: servers as child processes, wrk runs, RSS, tool installs.

Standard library only. Every server binds 127.0.0.1 on a free port and is stopped
(SIGTERM, then SIGKILL) when the benchmark ends; every load run is bounded by wrk's
``-d`` and a timeout.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
WRK_DIR = BENCH_DIR / "wrk"
KEY = "qpk_test_sandbox"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(port: int, path: str, body: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json", "X-API-Key": KEY}
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def order(customer_id: str, order_id: str) -> dict:
    """One ingestable order (the loads differ only in whose and which)."""
    return {
        "customer_id": customer_id,
        "order_id": order_id,
        "order_date": "2024-01-14T16:05:00Z",
        "total_price": 49.9,
        "items": [
            {
                "product_id": "prod_fq_001",
                "product_name": "Fat Quarter Bundle",
                "category": "fabric",
                "quantity": 2,
                "price": 24.95,
            }
        ],
    }


ANALYZE_PATH = "/api/intelligence/analyze"
ANALYZE_BODY = b'{"customer_id":"test_customer_high_ltv","context":{}}'


@dataclass
class Server:
    """One server under test, started as a child process in its own process group."""

    name: str
    command: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    startup_seconds: float | None = None
    log: Path | None = None

    def start(self, timeout: float = 60.0) -> Server:
        """Start and wait for the first 200 on analyze; the wait is the start-up time."""
        self.log = Path(tempfile.mkstemp(prefix=f"bench-{self.name}-", suffix=".log")[1])
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.log}")
            try:
                status, _ = post(self.port, ANALYZE_PATH, ANALYZE_BODY, timeout=1.0)
            except OSError:
                status = 0
            if status == 200:
                self.startup_seconds = time.perf_counter() - started
                return self
            time.sleep(0.005)
        self.stop()
        raise RuntimeError(f"{self.name} gave no 200 within {timeout} s; see {self.log}")

    def memory_bytes(self) -> tuple[int, int]:
        """(RSS, PSS) summed over the server's process tree (with --workers N, the parent
        and its workers; node's helpers for Prism). RSS counts pages a forked worker shares
        with its parent twice; PSS splits them, so it is what the tree really costs."""
        assert self.process is not None
        pids = _tree(self.process.pid)
        return sum(_smaps(pid, "Rss:") for pid in pids), sum(_smaps(pid, "Pss:") for pid in pids)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def _tree(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        children = Path(f"/proc/{current}/task/{current}/children")
        if children.exists():
            queue.extend(int(child) for child in children.read_text().split())
    return found


def _smaps(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def run_wrk(port: int, scenario: str, path: str, connections: int, seconds: float, tag: str):
    """One bounded wrk run of ``bench/wrk/<scenario>.lua`` against 127.0.0.1:port."""
    script = Path(tempfile.mkstemp(prefix=f"bench-{scenario}-", suffix=".lua")[1])
    script.write_text(
        (WRK_DIR / f"{scenario}.lua").read_text() + "\n" + (WRK_DIR / "common.lua").read_text()
    )
    command = [
        "wrk",
        f"-t{min(connections, 2)}",
        f"-c{connections}",
        f"-d{round(seconds)}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{path}",
        "--",
        tag,
    ]
    try:
        output = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 30, check=True
        ).stdout
    finally:
        script.unlink()
    line = next(line for line in output.splitlines() if line.startswith("BENCH "))
    figures = json.loads(line.removeprefix("BENCH "))
    return LoadResult(
        figures["requests"],
        figures["duration_us"] / 1e6,
        figures["p50_us"] / 1000,
        figures["p99_us"] / 1000,
        figures["non_2xx"],
        figures["socket_errors"],
    )


def ensure_wrk() -> str:
    """wrk from Debian, installed when absent (needs root, as in CI and the dev machines)."""
    if shutil.which("wrk") is None:
        if os.geteuid() != 0:
            sys.exit("bench: wrk is not installed; run: sudo apt-get install -y wrk")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    result = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return (result.stdout or result.stderr).splitlines()[0].strip()


def ensure_nginx() -> str:
    """nginx from Debian (nginx-light), installed when absent, as wrk is."""
    if _nginx() is None:
        if os.geteuid() != 0:
            sys.exit("bench: nginx is not installed; run: sudo apt-get install -y nginx-light")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "nginx-light"], check=True)
    result = subprocess.run([str(_nginx()), "-v"], capture_output=True, text=True)
    return (result.stderr or result.stdout).strip().splitlines()[0]


def _nginx() -> Path | None:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    return Path(found) if found else None


# docker/nginx.conf's essentials (one port, turns taken between the replicas, the headers
# passed on, which replica answered) with the image's `worker_processes auto`, plus
# kept-alive upstream connections; every path in the server's own temp dir.
NGINX_CONF = """\
worker_processes auto;
pid {dir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream sandbox {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://sandbox;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            add_header X-Sandbox-Replica $upstream_addr always;
        }}
    }}
}}
"""


@dataclass
class Replicas:
    """docker-compose.yml on loopback: sandbox replicas, each its own process and port,
    behind one nginx port. Started and stopped like a Server (name, port, start, stop);
    a failed start stops what did start, and stop removes nginx's temp dir."""

    name: str
    replicas: list[Server]
    port: int = field(default_factory=free_port)
    proxy: Server | None = None
    directory: Path | None = None
    startup_seconds: float | None = None

    def start(self) -> Replicas:
        try:
            for replica in self.replicas:
                replica.start()
            self.directory = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
            self.directory.chmod(0o755)  # run as root, nginx's workers are `nobody`
            servers = "\n".join(f"        server 127.0.0.1:{r.port};" for r in self.replicas)
            conf = self.directory / "nginx.conf"
            conf.write_text(NGINX_CONF.format(dir=self.directory, servers=servers, port=self.port))
            nginx = str(_nginx() or "nginx")
            command = [nginx, "-p", str(self.directory), "-c", str(conf), "-e", "stderr",
                       "-g", "daemon off;"]  # fmt: skip
            self.proxy = Server(f"{self.name} nginx", command, self.port).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in [self.proxy, *self.replicas]:
            if server is not None:
                server.stop()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


def install_prism(spec: str, directory: Path) -> Path:
    """``npm install`` Prism into ``directory`` (reused when it is already there)."""
    binary = directory / "node_modules" / ".bin" / "prism"
    if not binary.exists():
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(directory),
             spec],
            check=True,
            timeout=600,
        )  # fmt: skip
    return binary


def tool_version(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (result.stdout or result.stderr).strip().splitlines()[0]


@dataclass
class RedisServer:
    """A throwaway redis-server for the Redis configurations: no persistence, loopback."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10.0) -> RedisServer:
        if shutil.which("redis-server") is None:
            sys.exit(
                "bench: redis-server is not installed; run: sudo apt-get install -y redis-server"
            )
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
