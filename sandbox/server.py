"""Serve the Flask app on our own HTTP/1.1 server (``sandbox.http11``): one event loop per
process, the app run inline on it. See ARCHITECTURE.md ("Why our own HTTP server") for the
measurements behind the choice.

The app never sleeps and never touches sockets itself: it leaves injected latency and
network faults in the WSGI environ (``sandbox.netfaults``), and this module carries them
out without blocking the loop: a delayed answer is an ``asyncio.sleep``, so a thousand
slow answers in flight cost a thousand timers, not a thousand threads; a ``reset`` aborts
the transport with ``SO_LINGER`` 0 (a TCP RST); a ``hang`` holds it, then drops it.

``--workers N`` (shared store only) forks N processes that accept on one socket; the
parent forwards SIGTERM/SIGINT, replaces a worker that dies, and exits when they are done.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import logging
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

from sandbox.accesslog import AccessLog
from sandbox.config import Settings
from sandbox.errors import InternalError, envelope
from sandbox.http11 import HttpServer, Request
from sandbox.netfaults import BODY_KEY, DELAY_KEY, ENVIRON_KEY, FORWARD_KEY, SERVER_CARRIES_OUT
from sandbox.store.redis_journal import flush_all as flush_journals

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
GRACE_SECONDS = 5.0  # requests in flight get this long to finish on SIGTERM

# The body reaches the app whole and de-chunked, so its framing headers are not passed on.
_NOT_PASSED_AS_HEADERS = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH", "TRANSFER_ENCODING"})

log = logging.getLogger("sandbox.server")


class WsgiBridge:
    """Runs a WSGI app inline for each request, then carries out what it deferred."""

    def __init__(
        self,
        app: WsgiApp,
        settings: Settings,
        multiprocess: bool = False,
        access_log: AccessLog | None = None,
        upstream: Any = None,
    ) -> None:
        """``upstream``: proxy mode's ``sandbox.proxy.upstream.Upstream``."""
        self.app = app
        self.multiprocess = multiprocess  # the listening socket is shared with other workers
        # Awaited before the app runs (sandbox.api.fastpath.FastPath.ahead): the store
        # call a Redis-backed request would otherwise make inline, blocking the loop.
        self.ahead: Callable[[dict[str, Any]], Any] | None = getattr(app, "sandbox_ahead", None)
        self.close_app: Callable[[], None] | None = getattr(app, "sandbox_close", None)
        self.access_log = access_log
        self.upstream = upstream
        self.max_body_bytes = settings.max_body_bytes
        self._base_environ = {
            "SERVER_NAME": settings.host,
            "SERVER_PORT": str(settings.port),
            "SCRIPT_NAME": "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": multiprocess,
            "wsgi.run_once": False,
            SERVER_CARRIES_OUT: True,
        }

    async def handle(self, request: Request) -> None:
        """Answer ``request``. Runs inside the server's protocol callback, and after a wait
        from its future's callback, never in a task (``sandbox.eager``): no
        ``asyncio.timeout()`` or ``asyncio.wait_for()`` here or below."""
        started = time.perf_counter()
        try:
            await self._handle(request, started)
        except (asyncio.CancelledError, ConnectionError):
            raise  # the client went away (or a network fault dropped it): nothing to send
        except Exception:
            # The app answers its own errors; this is the bridge failing. Still the envelope.
            path = request.raw_path.partition("?")[0]
            log.exception("unhandled error serving %s %s", request.method, path)
            if request.answered:
                return  # the answer is out already: nothing more to say on this connection
            if self.access_log is not None:
                seen = {"REQUEST_METHOD": request.method, "PATH_INFO": path}
                self.access_log.request(seen, 500, time.perf_counter() - started)
            body = json.dumps(envelope(InternalError())).encode()
            request.respond(500, [("Content-Type", "application/json")], body)

    async def _handle(self, request: Request, started: float) -> None:
        body, too_large = await self._read_body(request)
        environ = self._environ(request, body, too_large)
        if self.ahead is not None:
            before = self.ahead(environ)
            if before is not None:
                await before
        status, headers, payload = self._run(environ)
        exchange = environ.get(FORWARD_KEY)
        if exchange is not None:  # proxy mode: the answer is the upstream's
            local = headers  # what wraps the app (CORS) added to its stand-in answer
            status, headers, payload = await self.upstream.relay(
                request.method, request.raw_path, request.headers, body, exchange
            )
            headers = _with_local(headers, local)
        delay = environ.get(DELAY_KEY)
        if delay:
            await asyncio.sleep(delay)
        fault = environ.get(ENVIRON_KEY)
        if fault is not None:
            try:
                await self._network_fault(request, *fault)
            finally:  # logged once the connection is gone: the line's time is the hold
                if self.access_log is not None:
                    self.access_log.request(environ, None, time.perf_counter() - started)
        # The connection closes after it when the rest of the body was never read.
        request.respond(status, headers, payload, close=too_large)
        if self.access_log is not None:  # last: a failure above is logged as its 500
            self.access_log.request(environ, status, time.perf_counter() - started)

    async def _read_body(self, request: Request) -> tuple[bytes, bool]:
        """The body, unless it is over the limit: then (b"", True). The connection read it
        whole before the request came here, or stopped reading at the limit."""
        if request.too_large:
            return b"", True
        return request.body, False

    def _environ(self, request: Request, body: bytes, too_large: bool) -> dict[str, Any]:
        raw_path, _, query = request.raw_path.partition("?")
        # PEP 3333: the path percent-decoded, its bytes carried as latin-1 (which an
        # ASCII path without an escape already is).
        if "%" in raw_path or not raw_path.isascii():
            raw_path = unquote_to_bytes(raw_path.encode("utf-8", "surrogateescape")).decode(
                "latin-1"
            )
        environ = {
            **self._base_environ,
            "REQUEST_METHOD": request.method,
            "PATH_INFO": raw_path,
            "QUERY_STRING": query,
            "SERVER_PROTOCOL": f"HTTP/{request.version}",
            "REMOTE_ADDR": request.remote,
            "wsgi.input": io.BytesIO(body),
            # Read once already: the app takes it from here rather than re-reading
            # wsgi.input through werkzeug's stream wrappers.
            BODY_KEY: None if too_large else body,
            # Over the limit: the declared size (or one more than the limit) makes the
            # app answer 413 without reading.
            "CONTENT_LENGTH": str(self.max_body_bytes + 1 if too_large else len(body)),
        }
        for name, value in request.headers:
            key = name.upper().replace("-", "_")
            if key in _NOT_PASSED_AS_HEADERS:
                if key == "CONTENT_TYPE":
                    environ[key] = value
                continue
            key = "HTTP_" + key
            environ[key] = f"{environ[key]}, {value}" if key in environ else value
        return environ

    def _run(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
            started[:] = [status, headers]
            return _no_write

        result = self.app(environ, start_response)
        try:
            payload = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started
        return int(status.split(" ", 1)[0]), headers, payload

    @staticmethod
    async def _network_fault(request: Request, kind: str, seconds: float) -> None:
        transport = request.transport
        if kind == "hang":
            await asyncio.sleep(seconds)
        elif transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # Linger on, 0 s: closing sends a TCP RST instead of a FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if transport is not None:
            transport.abort()
        # Nothing may be written now: the server treats this as the client going away.
        raise ConnectionAbortedError("dropped by a network fault")


def _with_local(
    headers: list[tuple[str, str]], local: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The upstream's headers, with the proxy's own (CORS) in place of any of the same name."""
    local = [(n, v) for n, v in local if n.lower() not in ("content-type", "content-length")]
    if not local:
        return headers
    replaced = {name.lower() for name, _ in local}
    return [(n, v) for n, v in headers if n.lower() not in replaced] + local


def _no_write(data: bytes) -> None:
    raise RuntimeError("the sandbox's app returns its body; it never calls write()")


def _quiet_garbage_collector() -> None:
    """Short, rare pauses. The app's long-lived objects (contract, validators, fixtures)
    are built at start-up and frozen out of every future collection. A young collection
    every 2,000 allocations stays well under a millisecond (at 50,000 each one was a
    multi-millisecond p99 spike); the middle generation is collected 5x less often than
    by default, so customers cached under random-customer load are mostly promoted once,
    not rescanned (their full collections were 40-60 ms stalls). Measured with
    bench/run.py; see bench/RESULTS.md."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(2_000, 100, 100)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="[%(asctime)s] %(levelname)s %(name)s: %(message)s"
    )


async def _serve_on(bridge: WsgiBridge, sock: socket.socket) -> None:
    """Serve until SIGTERM or SIGINT, then let requests in flight finish (up to the grace)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = HttpServer(bridge.handle, bridge.max_body_bytes)
    await server.start(sock, shared=bridge.multiprocess)
    try:
        await stop.wait()
    finally:
        await server.stop(GRACE_SECONDS)
        if bridge.close_app is not None:
            bridge.close_app()
        if bridge.upstream is not None:
            await bridge.upstream.close()


def _run_loop(main: Any, upstream: Any) -> None:
    """Run ``main`` to the end on a new event loop: uvloop's for the proxy (``upstream``
    set), where the loop's own work (two connections per exchange) is most of the cost
    and uvloop's C loop took a share of it off (bench/proxy.py); asyncio's otherwise."""
    factory = None
    if upstream is not None:
        try:
            import uvloop
        except ImportError:  # not built for this platform (Windows)
            pass
        else:
            factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


def _listening_socket(settings: Settings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def serve(app: WsgiApp, settings: Settings) -> None:
    """Run until SIGINT/SIGTERM; return once every request in flight has been answered."""
    _configure_logging(settings.log_level)
    _quiet_garbage_collector()
    sock = _listening_socket(settings)
    access_log = AccessLog(settings.log_format, sys.stdout) if settings.access_log else None
    upstream = None
    if settings.upstream is not None:
        from sandbox.proxy.upstream import Upstream

        upstream = Upstream(settings)
    bridge = WsgiBridge(app, settings, settings.workers > 1, access_log, upstream)
    if settings.workers == 1:
        _run_loop(_serve_on(bridge, sock), upstream)
        return
    _Supervisor(bridge, sock, settings.workers).run()


class _Supervisor:
    """The parent of ``--workers N``: forks them, replaces one that dies, stops them all."""

    def __init__(self, bridge: WsgiBridge, sock: socket.socket, count: int) -> None:
        self.bridge = bridge
        self.sock = sock
        self.count = count
        self.children: set[int] = set()
        self.stopping = False

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for _ in range(self.count):
            self._fork()
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            self.children.discard(pid)
            if not self.stopping:
                log.error("worker %s exited (status %s); starting another", pid, status)
                time.sleep(0.1)  # a worker that dies at once must not spin the CPU
                self._fork()

    def _fork(self) -> None:
        pid = os.fork()
        if pid:
            self.children.add(pid)
            return
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        code = 0
        try:
            _run_loop(_serve_on(self.bridge, self.sock), self.bridge.upstream)
        except BaseException:
            log.exception("worker failed")
            code = 1
        finally:
            flush_journals()  # os._exit skips atexit: queued journal entries would be lost
            os._exit(code)

    def _stop(self, signum: int, frame: Any) -> None:
        self.stopping = True
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                self.children.discard(pid)
