"""The proxy's floor: forwards every request to the upstream and its answer back, and
does nothing else (no validation, journal, faults, access log). aiohttp's server, as the
sandbox runs it, and the proxy's own upstream client (sandbox.proxy.upstream).

Whatever `quimbi-sandbox proxy` does per exchange (both sides judged, journal, coverage,
faults) is the gap between this and the proxy on the same load; what this one loses
against calling the upstream directly is the extra hop itself on this machine.

    python bench/floor_proxy.py PORT UPSTREAM_URL
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

from sandbox.config import Settings
from sandbox.proxy.upstream import Upstream, end_to_end

_RECOMPUTED = frozenset({"content-length"})


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

    async def forward(request: web.BaseRequest) -> web.Response:
        body = await request.read()
        status, headers, payload = await upstream.relay(
            request.method, request.raw_path, request.headers.items(), body, _Passed
        )
        response = web.Response(body=payload, status=status)
        for name, value in end_to_end(headers, _RECOMPUTED):
            response.headers.add(name, value)
        return response

    runner = web.ServerRunner(web.Server(forward, access_log=None, handler_cancellation=False))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()  # until SIGTERM


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
