"""The sandbox's HTTP/1.1 server: one asyncio protocol per connection, requests parsed in
C by httptools (llhttp, the parser Node.js uses), each answer written as one buffer.

Why not aiohttp's server (ARCHITECTURE.md, "Why our own HTTP server"): per request its
machinery (request and response objects, a task, header multidicts, the writer) cost
15-25 % of the sandbox's CPU under load, and importing aiohttp took ~120 ms of start-up.
This module does what the sandbox needs and no more:

- keep-alive: HTTP/1.1 by default, HTTP/1.0 with ``Connection: keep-alive``; idle
  connections closed after :data:`KEEPALIVE_SECONDS`;
- pipelining: requests answered in order, one handled at a time; reading stops while one
  is handled (or while the transport's write buffer is full), so a client cannot queue
  more than one read's worth of requests, and a large answer is flushed before the next;
- bodies read whole (chunked ones de-chunked) before the handler runs; past
  ``max_body_bytes`` the request goes to the handler at once marked ``too_large``, the
  rest is never read and the connection closes after the answer;
- ``Expect: 100-continue`` answered when the request's turn comes (not for a body
  declared over the limit);
- a request head within limits (:data:`MAX_LINE_BYTES` a line or field, as aiohttp's;
  :data:`MAX_HEAD_BYTES` in all); what llhttp cannot parse, an over-long head and
  ``CONNECT`` are answered 400 ``MALFORMED_REQUEST`` in the error envelope, then closed.
  An ``Upgrade`` is ignored (RFC 9110 7.8): the request is answered as it is;
- :meth:`HttpServer.stop`: no new connections, idle ones closed, requests being handled
  finish (their answers say ``Connection: close``) within the grace, the rest aborted.

The handler (``sandbox.server.WsgiBridge.handle``) is a coroutine given a
:class:`Request`; it answers with :meth:`Request.respond`. It runs at once, inside
``data_received`` (``sandbox.eager``: carried on without a task if it waits); the answer's head is
``sandbox.http11_head``'s.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import httptools

from sandbox.eager import Driven, run_eagerly
from sandbox.errors import MalformedRequest, envelope
from sandbox.http11_head import answer_head, has_body

KEEPALIVE_SECONDS = 75.0  # an idle connection's life (aiohttp's default)
MAX_LINE_BYTES = 8190  # the request target, a header's name, a header's value
MAX_HEAD_BYTES = 64 * 1024  # the whole request head
_ACCEPTS_PER_WAKEUP = 64  # one process alone: connections waiting are taken in one go
_LARGE_ANSWER = 64 * 1024  # above it, the head and body are written apart (no copy)

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

log = logging.getLogger("sandbox.server")

Handler = Callable[["Request"], Awaitable[None]]


class Request:
    """One parsed request: the handler's view of it, and its way to answer."""

    __slots__ = (
        "method",
        "raw_path",
        "version",
        "headers",
        "body",
        "too_large",
        "keep_alive",
        "failure",
        "answered",
        "connection",
    )

    def __init__(self, connection: Connection, method: str, raw_path: str, version: str):
        self.connection = connection
        self.method = method
        self.raw_path = raw_path  # path and query as sent, bytes decoded as aiohttp did
        self.version = version  # "1.1" or "1.0"
        # As sent, in order; bytes decoded as UTF-8 (surrogateescape), as aiohttp did, so
        # the proxy re-encodes them to the very bytes the client sent.
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.too_large = False
        self.keep_alive = True
        self.failure: str | None = None  # unparseable: the 400's message, never handled
        self.answered = False

    @property
    def remote(self) -> str:
        return self.connection.remote

    @property
    def transport(self) -> asyncio.Transport | None:
        return self.connection.transport

    def respond(
        self, status: int, headers: list[tuple[str, str]], payload: bytes, close: bool = False
    ) -> None:
        """Write the answer (``close``: then close the connection)."""
        self.connection.write_answer(self, status, headers, payload, close)


class _Stop(Exception):
    """Raised in a parser callback: parse no further (the request is already queued)."""


class Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.remote = ""
        self.seen = True  # data or an answer since the last idle sweep
        self.quiet_since = 0.0
        self._parser = httptools.HttpRequestParser(self)
        self._request: Request | None = None  # being parsed
        self._url = b""
        self._body: list[bytes] = []
        self._size = 0
        self._declared = -1  # Content-Length, when one was sent
        self._expect = False
        self._in_head = False
        self._head_read = 0  # bytes read in later reads than the one the head began in
        self._head_size = 0
        self._queue: deque[Request] = deque()
        self._busy = False
        self._closing = False  # nothing more is read; close once the queue is answered
        self._lost = False
        self._reading = True
        self._writable = True
        self._continue = False  # a 100 Continue owed once the requests before are answered
        self.waiting: Driven | None = None  # the request being handled, while it waits

    # -- asyncio's callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.remote = peer[0] if isinstance(peer, tuple) else ""
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._queue.clear()
        self._parser = self._request = None  # each refers back here: no cycle for the GC
        self.server.forget(self)

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        self._serve_next()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self.seen = True
        if self._in_head:
            self._head_read += len(data)
        while True:
            try:
                self._parser.feed_data(data)
            except httptools.HttpParserUpgrade as upgrade:
                # The request before it is queued; what follows is the next request.
                data = data[upgrade.args[0] :]
                if data and not self._closing:
                    continue
            except httptools.HttpParserError as exc:
                if not self._closing:  # not one of ours (_Stop, or data after a close)
                    self._fail(f"The request is not valid HTTP/1.1: {exc}.")
            break
        if self._in_head and self._head_read > MAX_HEAD_BYTES and not self._closing:
            self._fail(f"The request head is over {MAX_HEAD_BYTES} bytes.")
        self._serve_next()

    def eof_received(self) -> bool:
        self._closing = True  # the client sends no more: answer what came, then close
        self._serve_next()
        return True

    # -- httptools' callbacks

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_read = self._head_size = self._size = 0
        self._url = b""
        self._body = []
        self._declared = -1
        self._expect = False
        self._request = Request(self, "", "", "1.1")

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > MAX_LINE_BYTES:
            self._fail(f"The request target is over {MAX_LINE_BYTES} bytes.")
            raise _Stop

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if len(name) > MAX_LINE_BYTES or len(value) > MAX_LINE_BYTES:
            self._fail(f"A request header is over {MAX_LINE_BYTES} bytes.")
            raise _Stop
        if self._head_size > MAX_HEAD_BYTES:
            self._fail(f"The request head is over {MAX_HEAD_BYTES} bytes.")
            raise _Stop
        low = name.lower()
        if low == b"content-length":
            self._declared = int(value)  # llhttp let only digits through
        elif low == b"expect":
            self._expect = value.lower() == b"100-continue"
        self._request.headers.append(  # type: ignore[union-attr]
            (name.decode("latin-1"), value.decode("utf-8", "surrogateescape"))
        )

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self._parser
        request = self._request
        assert request is not None
        request.method = method = parser.get_method().decode("latin-1")
        request.raw_path = self._url.decode("utf-8", "surrogateescape")
        request.version = parser.get_http_version()
        request.keep_alive = parser.should_keep_alive()  # llhttp forgets it at the end
        if method == "CONNECT":
            request.failure = "CONNECT is not supported: the sandbox is not a forward proxy."
        elif self._declared > self.server.max_body_bytes:
            self._too_large(request)
        elif self._expect and request.version == "1.1":
            self._continue = True  # written by _serve_next, once it is this request's turn

    def on_body(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self.server.max_body_bytes:  # chunked: no length was declared
            self._too_large(self._request)  # type: ignore[arg-type]
        self._body.append(chunk)

    def on_message_complete(self) -> None:
        request = self._request
        assert request is not None
        self._request = None
        body = self._body
        request.body = body[0] if len(body) == 1 else b"".join(body)
        self._queue.append(request)
        self._continue = False  # the body came without it
        if not request.keep_alive or request.failure is not None:
            self._closing = True  # llhttp refuses what follows; nothing more is read

    # -- serving

    def _too_large(self, request: Request) -> None:
        """Handled now, without its body, and the last: the rest is never read."""
        request.too_large = True
        request.keep_alive = False
        self._continue = False
        self._queue.append(request)
        self._closing = True
        raise _Stop

    def _fail(self, message: str) -> None:
        """Answer 400 once the requests before are answered, then close."""
        request = Request(self, "", "", self._request.version if self._request else "1.1")
        request.failure = message
        request.keep_alive = False
        self._request = None
        self._queue.append(request)
        self._closing = True

    def _serve_next(self) -> None:
        while self._queue and not self._busy and self._writable and not self._lost:
            request = self._queue.popleft()
            if request.failure is not None:
                self._refuse(request)
                continue
            self._busy = True
            if not self._start(request):
                break  # it waits: carried on, its end calls _finished
            self._finished(request)
        if self._lost or self.transport is None:
            return
        if self._busy or not self._writable or self._queue:
            if self._reading:
                self._reading = False
                self.transport.pause_reading()
        elif self._closing:
            self.transport.close()  # after what is buffered has been sent
        else:
            if self._continue:
                self._continue = False
                self.transport.write(_CONTINUE)
            if not self._reading:
                self._reading = True
                self.transport.resume_reading()

    def _start(self, request: Request) -> bool:
        """Run the handler until it ends (True) or waits (False: ``self.waiting`` carries
        it on)."""
        self.waiting = run_eagerly(self.server.handler(request), lambda: self._ended(request))
        return self.waiting is None

    def _ended(self, request: Request) -> None:
        self.waiting = None
        self._finished(request)
        self._serve_next()

    def _finished(self, request: Request) -> None:
        self._busy = False
        self.seen = True
        if not request.answered and not self._lost and self.transport is not None:
            self._closing = True  # no answer in its place: the next would be out of order
            self._queue.clear()
            self.transport.abort()

    def _refuse(self, request: Request) -> None:
        log.debug("refused a request from %s: %s", self.remote, request.failure)
        body = json.dumps(envelope(MalformedRequest(request.failure)), separators=(",", ":"))
        body = body.encode()
        request.respond(400, [("Content-Type", "application/json")], body, close=True)

    def write_answer(
        self,
        request: Request,
        status: int,
        headers: list[tuple[str, str]],
        payload: bytes,
        close: bool,
    ) -> None:
        head_only = request.method == "HEAD"
        close = close or not request.keep_alive or self.server.stopping
        head = answer_head(request.version, head_only, status, headers, len(payload), close)
        request.answered = True
        if close:
            self._closing = True
            self._queue.clear()
        if self._lost or self.transport is None:
            return
        if not payload or not has_body(status, head_only):
            self.transport.write(head)
        elif len(payload) > _LARGE_ANSWER:
            self.transport.write(head)
            self.transport.write(payload)
        else:
            self.transport.write(head + payload)

    def close_if_idle(self) -> bool:
        if self._busy or self._queue or self.transport is None:
            return False
        self.transport.close()
        return True


class HttpServer:
    """The connections of one process, accepted on a listening socket."""

    def __init__(
        self,
        handler: Handler,
        max_body_bytes: int,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
    ) -> None:
        self.handler = handler
        self.max_body_bytes = max_body_bytes
        self.keepalive_seconds = keepalive_seconds
        self.connections: set[Connection] = set()
        self.stopping = False
        self._sock: Any = None
        self._accepts = _ACCEPTS_PER_WAKEUP
        self._opening: set[asyncio.Task[Any]] = set()  # accepted, transport being made
        self._sweeper: asyncio.TimerHandle | None = None
        self._all_closed: asyncio.Future[None] | None = None

    async def start(self, sock: Any, shared: bool = False) -> None:
        """Accept on ``sock`` (listening, non-blocking). ``shared``: other processes
        (``--workers N``) accept on it too: then one connection is taken per wakeup.
        Every process is woken for a new connection, and asyncio's own accept loop takes
        all that are waiting at once: the first worker awake took all 8 of wrk's
        connections in about one run of three, and the other sat idle (2 workers measured
        1.0x one). One at a time, they take turns."""
        loop = asyncio.get_running_loop()
        self._sock = sock
        self._accepts = 1 if shared else _ACCEPTS_PER_WAKEUP
        loop.add_reader(sock.fileno(), self._accept)
        self._sweeper = loop.call_later(self._sweep_every(), self._sweep)

    def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self._accepts):
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return  # another process took it, or the client gave up already
            except OSError as exc:
                # Out of file descriptors or buffers: as asyncio does, stop accepting for
                # a moment rather than spin on a socket that stays readable.
                log.error("accepting a connection failed (%s); retrying in 1 s", exc)
                loop.remove_reader(self._sock.fileno())
                loop.call_later(1.0, self._resume_accepting)
                return
            conn.setblocking(False)
            self._opening.add(
                loop.create_task(loop.connect_accepted_socket(lambda: Connection(self), conn))
            )
            self._opening = {task for task in self._opening if not task.done()}

    def _resume_accepting(self) -> None:
        if not self.stopping and self._sock is not None:
            asyncio.get_running_loop().add_reader(self._sock.fileno(), self._accept)

    def _sweep_every(self) -> float:
        return min(self.keepalive_seconds / 8, 5.0)

    def _sweep(self) -> None:
        """Close connections idle for the keep-alive time. One timer for all of them, not
        one set and cancelled per request."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for connection in list(self.connections):
            if connection.seen:
                connection.seen = False
                connection.quiet_since = now
            elif now - connection.quiet_since >= self.keepalive_seconds:
                connection.close_if_idle()
        self._sweeper = loop.call_later(self._sweep_every(), self._sweep)

    def forget(self, connection: Connection) -> None:
        self.connections.discard(connection)
        if not self.connections and self._all_closed is not None:
            if not self._all_closed.done():
                self._all_closed.set_result(None)

    async def stop(self, grace: float) -> None:
        """Accept no more; let the requests being handled finish within ``grace``."""
        self.stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._sock is not None:
            # Closed, as asyncio's server closes its own: a new connection is refused now
            # rather than queued, then reset when the process exits (other workers keep
            # their copies of a shared socket).
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        for connection in list(self.connections):
            connection.close_if_idle()
        if self.connections:
            self._all_closed = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._all_closed), grace)
            except TimeoutError:
                left = list(self.connections)
                for connection in left:
                    if connection.waiting is not None:
                        connection.waiting.cancel()
                    if connection.transport is not None:
                        connection.transport.abort()
                # Their cancellations run (each a loop turn or so), as asyncio's runner
                # would run a cancelled task's to its end.
                for _ in range(10):
                    if all(connection.waiting is None for connection in left):
                        break
                    await asyncio.sleep(0)
        for task in self._opening:
            task.cancel()
