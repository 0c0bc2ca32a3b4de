"""The proxy's floor: forwards every request to the upstream and its answer back, and
does nothing else (no validation, journal, faults, access log). The sandbox's own HTTP
server (sandbox.http11), as the proxy runs it (on uvloop), and the proxy's own upstream
client (sandbox.proxy.upstream).

Whatever `quimbi-sandbox proxy` does per exchange (both sides judged, journal, coverage,
faults) is the gap between this and the proxy on the same load; what this one loses
against calling the upstream directly is the extra hop itself on this machine.

    python bench/floor_proxy.py PORT UPSTREAM_URL
"""

from __future__ import annotations

import asyncio
import socket
import sys

from sandbox.config import Settings
from sandbox.http11 import HttpServer, Request
from sandbox.proxy.upstream import Upstream


class _Passed:
    """Stands in for the proxy's Exchange: the answer as it came, or a bare 503."""

    @staticmethod
    def complete(status: int, headers: list[tuple[str, str]], body: bytes):
        return status, headers, body

    @staticmethod
    def fail(upstream: str, failure: str, reason: str):
        return 503, [("Content-Type", "text/plain")], f"{failure}: {reason}".encode()


async def main(port: int, upstream_url: str) -> None:
    upstream = Upstream(Settings(upstream=upstream_url))

    async def forward(request: Request) -> None:
        status, headers, payload = await upstream.relay(
            request.method, request.raw_path, request.headers, request.body, _Passed
        )
        request.respond(status, headers, payload)

    sock = socket.create_server(("127.0.0.1", port), backlog=1024)
    sock.setblocking(False)
    await HttpServer(forward, max_body_bytes=64 * 1024 * 1024).start(sock)
    await asyncio.Event().wait()  # until SIGTERM


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(int(sys.argv[1]), sys.argv[2]))
