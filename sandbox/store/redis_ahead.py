"""The Redis store's one call per operation request, made on the server's event loop
before the app runs (``RedisStore.incr_many_ahead``).

The app runs inline on the loop, so a call it makes itself blocks the loop for the whole
round trip, and every request pays for its own write and read: on loopback each is a
system call that costs about as much as the wait. Sent from here instead, the calls of
every request that arrived in one turn of the loop go out in one write on one pipelined
connection, and the loop answers other requests while Redis works. The app then finds
its request's reply waiting and makes no call (``RedisStore.incr_many(..., ahead=)``).

Only a reply Redis gave is used. Without one (no connection yet: it is being made in the
background; an error reply, NOSCRIPT after a SCRIPT FLUSH among them) the request makes
the call itself. The scripts are loaded as a connection opens. A connection that fails
or a reply that does not come in time is a store failure, told to the store's outage
guard (``on_failure``): the request's own call is then refused at
once with the outage's 503, as any call during an outage, rather than waiting for Redis
a second time. One connection per process and event loop; plain TCP or a unix socket
(TLS stores make their calls inline). No Flask.
"""

from __future__ import annotations

import asyncio
import collections
import os
from collections.abc import Callable, Sequence
from typing import Any

try:
    import hiredis
except ImportError:  # redis[hiredis] brings it; without it the calls stay inline
    hiredis = None


def _command(*args: Any) -> bytes:
    """One command in RESP (hiredis packs it in C)."""
    return hiredis.pack_command(args)


class _Connection(asyncio.Protocol):
    """One pipelined connection: commands are written once per loop turn, replies are
    matched to them in order. One watchdog timer for all of them (a timer per command
    cost more than the rest of the sending): the oldest unanswered past the timeout
    fails them all, as a connection that stopped answering."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timeout: float,
        on_failure: Callable[[BaseException], Any],
    ) -> None:
        self._loop = loop
        self._timeout = timeout
        self._on_failure = on_failure
        self._reader = hiredis.Reader(encoding="utf-8", errors="surrogateescape")
        self._waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self._out: list[bytes] = []
        self._watchdog: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, command: bytes) -> asyncio.Future[Any]:
        loop = self._loop
        future = loop.create_future()
        if self.closed:  # lost since it was handed out: nothing would ever answer
            future.set_exception(ConnectionError("redis connection lost"))
            return future
        now = loop.time()
        self._waiting.append((future, now))
        if self._watchdog is None:
            self._watchdog = loop.call_at(now + self._timeout, self._watch)
        if not self._out:
            loop.call_soon(self._flush)
        self._out.append(command)
        return future

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self.transport is not None and not self.closed:
            self.transport.write(b"".join(out))

    def _watch(self) -> None:
        self._watchdog = None
        if not self._waiting or self.closed:
            return
        since = self._waiting[0][1]
        if self._loop.time() - since >= self._timeout:
            self._fail(TimeoutError("redis gave no reply in time"))
        else:
            self._watchdog = self._loop.call_at(since + self._timeout, self._watch)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            if not self._waiting:  # a reply nobody asked for: the stream is not ours
                self.close()
                return
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError("redis connection lost"))

    def _fail(self, error: BaseException) -> None:
        """Every command still waiting fails; with any waiting, the store is told (an
        idle connection Redis closed is no failure: the next command reconnects)."""
        self.close()
        if not self._waiting:
            return
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)
        self._on_failure(error)

    def close(self) -> None:
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self.transport is not None:
            self.transport.abort()


class AheadClient:
    """Scripts sent on the loop's pipelined connection (:meth:`send`)."""

    def __init__(
        self,
        connection_kwargs: dict[str, Any],
        unix: bool,
        timeout: float,
        on_failure: Callable[[BaseException], Any],
        scripts: Sequence[str] = (),
    ) -> None:
        self._kwargs = connection_kwargs
        self._unix = unix
        self._timeout = timeout
        self._on_failure = on_failure
        self._scripts = scripts  # loaded as each connection opens: EVALSHA finds them
        self._connection: _Connection | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._owner: tuple[int, asyncio.AbstractEventLoop] | None = None

    @classmethod
    def supports(cls, connection_class_name: str) -> bool:
        return hiredis is not None and connection_class_name in (
            "Connection",
            "UnixDomainSocketConnection",
        )

    def send(
        self, sha: str, keys: Sequence[str], args: Sequence[Any]
    ) -> asyncio.Future[Any] | None:
        """EVALSHA on the connection: the future of its reply (an exception instance
        when Redis answered with an error, NOSCRIPT after a SCRIPT FLUSH among them; it
        fails when the connection does), or None while there is no connection (one is
        being made, in the background)."""
        connection = self._ready()
        if connection is None:
            return None
        return connection.send(_command("EVALSHA", sha, len(keys), *keys, *args))

    def _ready(self) -> _Connection | None:
        loop = asyncio.get_running_loop()
        owner = (os.getpid(), loop)
        if self._owner != owner:  # a forked worker, or a new loop: nothing is shared
            self._owner, self._connection, self._connecting = owner, None, None
        connection = self._connection
        if connection is not None and not connection.closed:
            return connection
        if self._connecting is None:
            self._connecting = loop.create_task(self._connect(loop))
        return None

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> None:
        kwargs = self._kwargs
        connection = _Connection(loop, self._timeout, self._on_failure)
        try:
            async with asyncio.timeout(kwargs.get("socket_connect_timeout") or self._timeout):
                if self._unix:
                    await loop.create_unix_connection(lambda: connection, kwargs["path"])
                else:
                    host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
                    await loop.create_connection(lambda: connection, host, port)
                hello = []
                if kwargs.get("password"):
                    user = kwargs.get("username")
                    auth = (user, kwargs["password"]) if user else (kwargs["password"],)
                    hello.append(connection.send(_command("AUTH", *auth)))
                if kwargs.get("db"):
                    hello.append(connection.send(_command("SELECT", kwargs["db"])))
                hello += [connection.send(_command("SCRIPT", "LOAD", s)) for s in self._scripts]
                for reply in await asyncio.gather(*hello):
                    if isinstance(reply, Exception):
                        raise ConnectionError(str(reply))
        except (OSError, TimeoutError, ConnectionError) as exc:
            connection.close()
            self._on_failure(exc)
        else:
            self._connection = connection
        finally:
            self._connecting = None

    def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
