"""The Redis store's one call per operation request, made on the server's event loop
before the app runs (``RedisStore.incr_many_ahead``).

The app runs inline on the loop, so a call it makes itself blocks the loop for the whole
round trip, and every request pays for its own write and read: on loopback each is a
system call that costs about as much as the wait. Sent from here instead, the calls of
every request that arrived in one turn of the loop go out in one write on one pipelined
connection, and the loop answers other requests while Redis works. The app then finds
its request's reply waiting and makes no call (``RedisStore.incr_many(..., ahead=)``).

Only a reply Redis gave is used. No reply leaves the request to make the call itself.
A connection that fails or a reply that does not come in time is a store failure, told
to the store's outage guard (``on_failure``): the request's own call is then refused at
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


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(TimeoutError("redis gave no reply in time"))


class _Connection(asyncio.Protocol):
    """One pipelined connection: commands are written once per loop turn, replies are
    matched to them in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._reader = hiredis.Reader(encoding="utf-8", errors="surrogateescape")
        self._waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._out: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, command: bytes) -> asyncio.Future[Any]:
        future = self._loop.create_future()
        if self.closed:  # lost since it was handed out: nothing would ever answer
            future.set_exception(ConnectionError("redis connection lost"))
            return future
        self._waiting.append(future)
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(command)
        return future

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self.transport is not None and not self.closed:
            self.transport.write(b"".join(out))

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            if not self._waiting:  # a reply nobody asked for: the stream is not ours
                self.close()
                return
            future = self._waiting.popleft()
            if not future.done():  # one that timed out is still owed its reply
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionError("redis connection lost"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class AheadClient:
    """Scripts run on the loop's pipelined connection; None whenever Redis gave no reply
    (or an error: the inline call then meets it itself)."""

    def __init__(
        self,
        connection_kwargs: dict[str, Any],
        unix: bool,
        timeout: float,
        on_failure: Callable[[BaseException], Any],
    ) -> None:
        self._kwargs = connection_kwargs
        self._on_failure = on_failure
        self._unix = unix
        self._timeout = timeout
        self._connection: _Connection | None = None
        self._connecting: asyncio.Future[_Connection | None] | None = None
        self._owner: tuple[int, asyncio.AbstractEventLoop] | None = None

    @classmethod
    def supports(cls, connection_class_name: str) -> bool:
        return hiredis is not None and connection_class_name in (
            "Connection",
            "UnixDomainSocketConnection",
        )

    async def evalsha(self, script: Any, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """``script`` (redis-py's ``Script``) run as EVALSHA; sent whole when Redis has
        lost it (a restart, SCRIPT FLUSH), which loads it again."""
        reply = await self._send(_command("EVALSHA", script.sha, len(keys), *keys, *args))
        if isinstance(reply, Exception) and str(reply).startswith("NOSCRIPT"):
            reply = await self._send(_command("EVAL", script.script, len(keys), *keys, *args))
        return None if isinstance(reply, Exception) else reply

    async def _send(self, command: bytes) -> Any:
        connection = await self._ready()
        if connection is None:
            return None
        future = connection.send(command)
        # A plain timer: asyncio.timeout() costs several times more, on every request.
        timer = asyncio.get_running_loop().call_later(self._timeout, _expire, future)
        try:
            return await future
        except (TimeoutError, ConnectionError) as exc:
            self._drop(connection)
            self._on_failure(exc)  # so the request's own call is refused, not retried
            return None
        finally:
            timer.cancel()

    async def _ready(self) -> _Connection | None:
        loop = asyncio.get_running_loop()
        owner = (os.getpid(), loop)
        if self._owner != owner:  # a forked worker, or a new loop: nothing is shared
            self._owner, self._connection, self._connecting = owner, None, None
        connection = self._connection
        if connection is not None and not connection.closed:
            return connection
        if self._connecting is None:
            self._connecting = loop.create_future()
            loop.create_task(self._connect(loop, self._connecting))
        return await asyncio.shield(self._connecting)

    async def _connect(self, loop: asyncio.AbstractEventLoop, done: asyncio.Future) -> None:
        kwargs = self._kwargs
        connection: _Connection | None = _Connection(loop)
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
                for reply in await asyncio.gather(*hello):
                    if isinstance(reply, Exception):
                        raise ConnectionError(str(reply))
        except (OSError, TimeoutError, ConnectionError) as exc:
            if connection.transport is not None:
                connection.close()
            connection = None
            self._on_failure(exc)
        self._connection = connection
        self._connecting = None
        done.set_result(connection)

    def _drop(self, connection: _Connection) -> None:
        connection.close()
        if self._connection is connection:
            self._connection = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
