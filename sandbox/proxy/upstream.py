"""The proxy's way to the upstream: a pool of kept-alive HTTP/1.1 connections per process.

The server (``sandbox.server.WsgiBridge``) calls :meth:`Upstream.relay` for a request the
app left an ``Exchange`` for; awaiting the upstream never blocks the loop, so requests in
flight overlap. The request goes out as it came (method, path and query as sent, body,
end-to-end headers) and the answer comes back as it came (status, end-to-end headers,
body; a compressed body stays compressed): hop-by-hop headers (RFC 9110 7.6.1, and any
the ``Connection`` header names) are the one hop's business and are dropped both ways,
and ``Host``/``Content-Length`` are the new hop's own. The ``X-Sandbox-*`` request
headers are addressed to the proxy, so they are not sent on. ``--upstream-api-key``
replaces the client's key on the way out only.

Why not aiohttp's client: per forwarded request it cost about as much CPU as the whole
sandbox answering the request itself (request and response objects, cookie jar, tracing
hooks, a task per body write), and the proxy's throughput is CPU-bound. Here a request is
one ``write`` of bytes built in place, and the answer is parsed in C by httptools (llhttp,
the parser Node.js uses): see bench/proxy.py and README "Speed".
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httptools

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
# Expect: the proxy has read the whole body already, so there is nothing to wait for.
_NOT_SENT = HOP_BY_HOP | {"host", "content-length", "expect"}
_POOL_SIZE = 100  # connections open to the upstream per process
# Bounds the memory an upstream answer can take; past it the answer is a "bad-answer".
MAX_ANSWER_BYTES = 64 * 1024 * 1024
_NO_BODY_SENT = ("GET", "HEAD", "DELETE")


def end_to_end(pairs: Iterable[tuple[str, str]], extra: frozenset[str] = HOP_BY_HOP):
    """The pairs without hop-by-hop headers (``extra``) and those ``Connection`` names."""
    pairs = list(pairs)
    lows = [name.lower() for name, _ in pairs]
    named = _connection_names(pairs) if "connection" in lows else ()
    return [
        pair for pair, low in zip(pairs, lows, strict=True) if low not in extra and low not in named
    ]


def _connection_names(pairs: list[tuple[str, str]]) -> set[str]:
    """The headers a ``Connection`` header names: this hop's own too."""
    return {
        token.strip().lower()
        for name, value in pairs
        if name.lower() == "connection"
        for token in value.split(",")
    }


class UpstreamFailed(Exception):
    """How the upstream failed: ``failure`` is unreachable, timeout, reset or bad-answer."""

    def __init__(self, failure: str, reason: str) -> None:
        super().__init__(reason)
        self.failure = failure
        self.reason = reason


class _Answer:
    """One answer being read: httptools' callbacks for it land here, one call each."""

    __slots__ = (
        "parser", "head", "status", "headers", "chunks", "size", "done", "keep", "too_large"
    )  # fmt: skip

    def __init__(self, head: bool) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.head = head  # a HEAD answer ends with its headers, whatever they announce
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.done = False
        self.keep = False
        self.too_large = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.status = status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim answer: the final one follows
            self.headers = []
            return
        if self.head:
            self.done = True
        # Asked now: llhttp forgets it once the message is complete.
        self.keep = self.parser.should_keep_alive()

    def on_body(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > MAX_ANSWER_BYTES:
            self.too_large = True
            raise OverflowError  # stops the parser; data_received says why
        self.chunks.append(chunk)

    def on_message_complete(self) -> None:
        if self.status >= 200:
            self.done = True


class _Connection(asyncio.Protocol):
    """One kept-alive connection: at most one request on it at a time."""

    def __init__(self, pool: Upstream) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.counted_out = False  # its place in the pool given back
        self._answer: _Answer | None = None
        self._waiter: asyncio.Future[_Answer] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, data: bytes, head: bool) -> asyncio.Future[_Answer]:
        self._answer = _Answer(head)
        self._waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(data)
        return self._waiter

    def data_received(self, data: bytes) -> None:
        answer, waiter = self._answer, self._waiter
        if answer is None or waiter is None or waiter.done():
            self._drop()  # bytes nobody asked for: the connection cannot be trusted
            return
        try:
            answer.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if answer.too_large:
                reason = f"the answer is over {MAX_ANSWER_BYTES} bytes"
            else:
                reason = f"not an HTTP answer: {exc}"
            self._finish(UpstreamFailed("bad-answer", reason))
            return
        if answer.done:
            self._finish(None)

    def eof_received(self) -> bool:
        answer = self._answer
        if answer is not None and not answer.done and answer.status >= 200:
            framed = any(
                name.lower() in ("content-length", "transfer-encoding")
                for name, _ in answer.headers
            )
            if not framed:  # the body runs to the end of the connection (RFC 9112 6.3)
                answer.done = True
                self._finish(None)
                return False
        self._finish(UpstreamFailed("reset", "the upstream closed the connection mid-answer"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        reason = str(exc) or type(exc).__name__ if exc is not None else "connection closed"
        self._finish(UpstreamFailed("reset", reason))

    def _finish(self, failure: UpstreamFailed | None) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if failure is None:
            waiter.set_result(self._answer)  # type: ignore[arg-type]
        else:
            self._drop()
            waiter.set_exception(failure)
        if self._answer is not None:
            self._answer.parser = None  # it refers back to the answer: no cycle left behind
        self._answer = self._waiter = None

    def _drop(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class Upstream:
    def __init__(self, settings: Settings) -> None:
        assert settings.upstream is not None
        self.base = settings.upstream.rstrip("/")
        parts = urlsplit(self.base)
        self.name = f"{parts.scheme}://{parts.netloc}"  # what an error's details name
        self.api_key = settings.upstream_api_key
        self.timeout = settings.upstream_timeout
        self._host = parts.hostname or ""
        default_port = 443 if parts.scheme == "https" else 80
        self._port = parts.port or default_port
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._host_line = "Host: " + parts.netloc.rpartition("@")[2]
        self._prefix = parts.path.rstrip("/")
        self._idle: deque[_Connection] = deque()
        self._open = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        # Connections with a request out, and when its answer is due: one timer checks
        # them all (a libuv timer set and cancelled per exchange was ~2 % of the proxy's
        # CPU), so a timeout fires up to a tenth of it (at most 0.25 s) late.
        self._due: dict[_Connection, float] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    def outgoing(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        pairs = list(headers)
        lows = [name.lower() for name, _ in pairs]
        named = _connection_names(pairs) if "connection" in lows else ()
        swap = self.api_key is not None
        sent = []
        for (name, value), low in zip(pairs, lows, strict=True):
            if (
                low in _NOT_SENT
                or low in named
                or low.startswith("x-sandbox-")
                or (swap and low == "x-api-key")
            ):
                continue
            sent.append((name, value))
        if swap:
            sent.append(("X-API-Key", self.api_key))
        return sent

    def _request_bytes(
        self, method: str, raw_path: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> bytes:
        lines = [f"{method} {self._prefix}{raw_path} HTTP/1.1", self._host_line]
        lines += [f"{name}: {value}" for name, value in self.outgoing(headers)]
        if body or method not in _NO_BODY_SENT:
            lines.append(f"Content-Length: {len(body)}")
        lines.append("\r\n")
        return _raw("\r\n".join(lines)) + body

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
        data = self._request_bytes(method, raw_path, headers, body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        try:
            # In one coroutine, not one per step: every step's frame is resumed again
            # when the answer comes, and this runs once per exchange.
            connection = self._idle_connection() or await self._connection(deadline)
            self._due[connection] = deadline
            if self._sweeper is None:
                self._sweeper = loop.call_later(self._sweep_every, self._sweep)
            try:
                answer = await connection.send(data, method == "HEAD")
            except BaseException:
                connection._drop()  # a half-read answer: the connection is of no more use
                self.release(connection)
                raise
            finally:
                del self._due[connection]
        except UpstreamFailed as exc:
            return exchange.fail(self.name, exc.failure, exc.reason)
        if not answer.keep:
            connection._drop()
        self.release(connection)
        return exchange.complete(answer.status, end_to_end(answer.headers), b"".join(answer.chunks))

    def _idle_connection(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        return None

    async def _connection(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        while self._open >= _POOL_SIZE:
            waiter = loop.create_future()
            self._waiting.append(waiter)
            try:
                await _within(waiter, deadline)
            except TimeoutError:
                raise _timed_out(self.timeout) from None
            connection = self._idle_connection()
            if connection is not None:
                return connection
        self._open += 1
        try:
            connecting = loop.create_task(
                loop.create_connection(
                    lambda: _Connection(self), self._host, self._port, ssl=self._ssl
                )
            )
            _, connection = await _within(connecting, deadline)
        except TimeoutError:
            self._open -= 1
            self._wake()
            raise _timed_out(self.timeout) from None
        except (OSError, ssl.SSLError) as exc:
            self._open -= 1
            self._wake()
            raise UpstreamFailed(
                "unreachable", f"cannot connect to {self._host}:{self._port}: {exc}"
            ) from None
        except BaseException:  # cancelled (the server stopping): its place is free again
            self._open -= 1
            self._wake()
            raise
        sock = connection.transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def release(self, connection: _Connection) -> None:
        if connection.closed:
            self.forget(connection)
        else:
            self._idle.append(connection)
        self._wake()

    def forget(self, connection: _Connection) -> None:
        """A connection closed: its place in the pool is free (counted once)."""
        if connection.counted_out:
            return
        connection.counted_out = True
        self._open -= 1
        try:
            self._idle.remove(connection)
        except ValueError:
            pass
        self._wake()

    def _wake(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    @property
    def _sweep_every(self) -> float:
        return min(self.timeout / 10, 0.25)

    def _sweep(self) -> None:
        """Fail every request whose answer is overdue; check again while any is out."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for connection, deadline in list(self._due.items()):
            if deadline <= now:
                # The failure made only now: an exception object per exchange showed in
                # the proxy's profile.
                connection._finish(_timed_out(self.timeout))
        self._sweeper = loop.call_later(self._sweep_every, self._sweep) if self._due else None

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        while self._idle:
            self._idle.pop()._drop()


def _raw(text: str) -> bytes:
    """The bytes the client sent: the server decoded them as UTF-8 with surrogateescape."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no decoding made: kept, never a failure
        return text.encode("utf-8", "surrogatepass")


async def _within(future: asyncio.Future[Any], deadline: float) -> Any:
    """``future``'s result, or TimeoutError (and ``future`` cancelled) at the loop time
    ``deadline``. Not ``asyncio.wait_for``: from Python 3.12 it needs a task, and a
    request never runs in one (``sandbox.eager``)."""
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        future.cancel()

    timer = asyncio.get_running_loop().call_at(deadline, expire)
    try:
        return await future
    except asyncio.CancelledError:
        if expired:
            raise TimeoutError from None
        raise
    finally:
        timer.cancel()


def _timed_out(seconds: float) -> UpstreamFailed:
    return UpstreamFailed("timeout", f"no complete answer within {seconds} s")
