"""`quimbi-sandbox healthcheck`: the probe the Docker image runs, with serve's settings."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sandbox.config import Settings
from sandbox.healthcheck import health_url, probe
from tests.conftest import free_port


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("0.0.0.0", "http://127.0.0.1:9000/_sandbox/health"),
        ("::", "http://[::1]:9000/_sandbox/health"),
        ("127.0.0.1", "http://127.0.0.1:9000/_sandbox/health"),
        ("::1", "http://[::1]:9000/_sandbox/health"),
        ("sandbox.internal", "http://sandbox.internal:9000/_sandbox/health"),
    ],
)
def test_health_url_reaches_a_wildcard_bind_on_the_loopback(host, expected):
    assert health_url(Settings(host=host, port=9000)) == expected


def healthcheck(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sandbox", "healthcheck", *args],
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_healthy_server_by_flag_and_by_environment(server):
    assert healthcheck("--port", str(server.port)).returncode == 0
    by_env = healthcheck(env={"QUIMBI_SANDBOX_PORT": str(server.port)})
    assert by_env.returncode == 0, by_env.stderr
    assert "ok" in by_env.stdout
    # serve's wildcard bind is probed on the loopback, as inside a container
    wildcard = healthcheck(
        env={"QUIMBI_SANDBOX_HOST": "0.0.0.0", "QUIMBI_SANDBOX_PORT": str(server.port)}
    )
    assert wildcard.returncode == 0, wildcard.stderr


def test_nothing_listening_is_unhealthy():
    result = healthcheck(env={"QUIMBI_SANDBOX_PORT": str(free_port())})
    assert result.returncode == 1
    assert "unreachable" in result.stderr


def test_bad_setting_is_unhealthy_not_exit_2():
    # Docker reserves exit code 2 in a HEALTHCHECK.
    result = healthcheck(env={"QUIMBI_SANDBOX_PORT": "http"})
    assert result.returncode == 1
    assert "QUIMBI_SANDBOX_PORT" in result.stderr


class _Answer(BaseHTTPRequestHandler):
    status = 200
    body = b""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[Callable[[int, bytes], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(status: int, body: bytes) -> str:
        handler = type("Handler", (_Answer,), {"status": status, "body": body})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/_sandbox/health"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize(
    ("status", "body", "healthy"),
    [
        (200, b'{"status": "ok", "version": "1"}', True),
        (200, b'{"status": "starting"}', False),
        (200, b"<html>a proxy page</html>", False),
        (503, b'{"error": {"code": "SERVICE_UNAVAILABLE", "message": "down"}}', False),
    ],
)
def test_only_200_with_status_ok_is_healthy(answering, status, body, healthy):
    ok, seen = probe(answering(status, body))
    assert ok is healthy, seen
