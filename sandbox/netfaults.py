"""Held answers and network faults: what the app asks of the server but cannot do itself.

The app never sleeps and never touches a socket. It leaves :data:`DELAY_KEY` (seconds to
hold the answer) and :data:`ENVIRON_KEY` (a network fault) in the WSGI environ. The
sandbox's own server (``sandbox.server``) sets :data:`SERVER_CARRIES_OUT` and does
both without blocking; for any other WSGI server (werkzeug's, which the contract kit and
tests use, or gunicorn) the middleware below does them, blocking its thread.

Dropping a connection with no HTTP answer at all needs the raw socket, which those
servers expose in the WSGI environ (gunicorn as ``gunicorn.socket``, werkzeug's threaded
server as ``werkzeug.socket``). The middleware lets the app finish, throws its answer
away and then:

- ``reset``: sets ``SO_LINGER`` to (on, 0 s) and closes the socket, so the kernel sends
  a TCP RST (gunicorn). werkzeug keeps a buffered reader on the socket object, which
  keeps the descriptor open past ``close()`` and would read from it again; there the
  descriptor is swapped (``dup2``) for one end of a socket pair whose other end is
  closed: that drops the last reference to the TCP socket (RST) and the server's next
  read sees a clean end of stream. If that is impossible, the socket is shut down
  (FIN): the client still sees the connection end without a response.
- ``hang``: holds the connection for the asked seconds (capped by the caller), then
  shuts it down without a response.

Both end by raising ``ConnectionResetError``, which gunicorn and werkzeug treat as a
client that went away: nothing more is written and nothing is logged as an error.
No Flask here.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable
from typing import Any

ENVIRON_KEY = "sandbox.network_fault"  # value: ("reset" | "hang", seconds)
DELAY_KEY = "sandbox.delay_seconds"  # value: seconds to hold the answer before sending it
SERVER_CARRIES_OUT = "sandbox.server_carries_out"  # set by a server that does both itself
BODY_KEY = "sandbox.body"  # the whole body, read and size-checked by the server
# Proxy mode: the exchange the server must forward upstream, then finish (sandbox.proxy).
FORWARD_KEY = "sandbox.forward"
STARTED_KEY = "sandbox.started"  # time.perf_counter() when the request reached the app

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _raw_socket(environ: dict[str, Any]) -> tuple[socket.socket | None, bool]:
    """The client socket and whether closing it really closes the descriptor."""
    sock = environ.get("gunicorn.socket")
    if isinstance(sock, socket.socket):
        return sock, True
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        return sock, False
    return None, False


def _abort(sock: socket.socket, closes: bool) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if closes:
            sock.close()
            return
        spare, peer = socket.socketpair()
        with spare, peer:
            os.dup2(spare.fileno(), sock.fileno())
    except OSError:
        _shut(sock)  # the client may have gone first; the connection ends either way


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class NetworkFaults:
    """WSGI middleware that holds answers and carries out ``reset`` and ``hang``."""

    def __init__(self, app: WsgiApp, sleep: Callable[[float], None] = time.sleep) -> None:
        self.app = app
        self._sleep = sleep

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        # Stamped here, the outermost layer: cheaper than a Flask before_request hook.
        environ[STARTED_KEY] = time.perf_counter()
        result = self.app(environ, start_response)
        if environ.get(SERVER_CARRIES_OUT):
            return result
        delay = environ.get(DELAY_KEY)
        if delay:
            self._sleep(delay)
        fault = environ.get(ENVIRON_KEY)
        if fault is None:
            return result
        close = getattr(result, "close", None)
        if close is not None:
            close()
        kind, seconds = fault
        sock, closes = _raw_socket(environ)
        if kind == "hang":
            self._sleep(seconds)
            if sock is not None:
                _shut(sock)
        elif sock is not None:
            _abort(sock, closes)
        raise ConnectionResetError(errno.ECONNRESET, f"sandbox fault: {kind}")
