"""The proxy's way to the upstream: one pooled aiohttp client per server process.

The server (``sandbox.server.WsgiBridge``) calls :meth:`Upstream.relay` for a request the
app left an ``Exchange`` for; awaiting the upstream never blocks the loop, so requests in
flight overlap. The request goes out as it came (method, path and query as sent, body,
end-to-end headers) and the answer comes back as it came (status, end-to-end headers,
body; a compressed body stays compressed): hop-by-hop headers (RFC 9110 7.6.1, and any
the ``Connection`` header names) are the one hop's business and are dropped both ways,
and ``Host``/``Content-Length`` are the new hop's own. The ``X-Sandbox-*`` request
headers are addressed to the proxy, so they are not sent on. ``--upstream-api-key``
replaces the client's key on the way out only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from sandbox.config import Settings

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_NOT_SENT = HOP_BY_HOP | {"host", "content-length"}
_POOL_SIZE = 100  # connections kept to the upstream per process


def end_to_end(pairs: Iterable[tuple[str, str]], extra: frozenset[str] = HOP_BY_HOP):
    """The pairs without hop-by-hop headers (``extra``) and those ``Connection`` names."""
    pairs = list(pairs)
    named = {
        token.strip().lower()
        for name, value in pairs
        if name.lower() == "connection"
        for token in value.split(",")
    }
    return [(n, v) for n, v in pairs if n.lower() not in extra and n.lower() not in named]


class Upstream:
    def __init__(self, settings: Settings) -> None:
        assert settings.upstream is not None
        self.base = settings.upstream
        parts = urlsplit(self.base)
        self.name = f"{parts.scheme}://{parts.netloc}"  # what an error's details name
        self.api_key = settings.upstream_api_key
        self.timeout = aiohttp.ClientTimeout(total=settings.upstream_timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on the serving loop (after --workers forks), once per process.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=_POOL_SIZE),
                timeout=self.timeout,
                auto_decompress=False,  # the body goes back as it came
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"),
            )
        return self._session

    def outgoing(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        sent = [
            (name, value)
            for name, value in end_to_end(headers, _NOT_SENT)
            if not name.lower().startswith("x-sandbox-")
        ]
        if self.api_key is not None:
            sent = [(n, v) for n, v in sent if n.lower() != "x-api-key"]
            sent.append(("X-API-Key", self.api_key))
        return sent

    async def relay(
        self,
        method: str,
        raw_path: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        exchange: Any,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """The finished answer: the upstream's (``exchange.complete``), or the 503 saying
        how it failed (``exchange.fail``)."""
        url = URL(self.base + raw_path, encoded=True)  # the path and query exactly as sent
        sent = self.outgoing(headers)
        try:
            async with self._client().request(
                method,
                url,
                headers=sent,
                data=body if body or method not in ("GET", "HEAD", "DELETE") else None,
                allow_redirects=False,
            ) as answer:
                payload = await answer.read()
                status = answer.status
                received = [
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in answer.raw_headers
                ]
        except TimeoutError:
            seconds = self.timeout.total
            return exchange.fail(self.name, "timeout", f"no complete answer within {seconds} s")
        except aiohttp.ClientConnectorError as exc:
            return exchange.fail(self.name, "unreachable", str(exc))
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            return exchange.fail(self.name, "reset", str(exc) or type(exc).__name__)
        except aiohttp.ClientError as exc:
            return exchange.fail(self.name, "bad-answer", str(exc) or type(exc).__name__)
        return exchange.complete(status, end_to_end(received), payload)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
