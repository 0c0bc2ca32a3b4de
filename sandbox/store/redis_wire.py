"""The Redis store's calls on every request, sent straight on a connection.

redis-py's client path (retry wrapper, pool checkout with a poll for stale data,
release) costs about as much client time as the round trip itself; for the few calls
every request makes (its view, the retry-judgement exchange, the journal) that was the
largest part of what Redis costs the sandbox. :class:`Wire` keeps its own idle
connections (made with the client's own settings: URL, timeouts, protocol, password)
and sends each call on one: a connection that fails is dropped, never reused, and the
error (``redis.ConnectionError``/``TimeoutError``) reaches the store's outage guard as
before. No retries, as in the rest of the store.

A connection idle for a while is checked before use (a Redis restarted since has closed
it; the check costs more than the call, so busy connections skip it), and every
connection kept is dropped when a call fails (``drop_idle``, from the store's guard).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import redis
from redis.commands.core import Script

# Idle at least this long: checked before use. Under load a connection is reused within
# milliseconds, and a restart during load fails calls, which drop every kept connection.
CHECK_AFTER_IDLE_SECONDS = 0.5


class Wire:
    def __init__(self, client: redis.Redis) -> None:
        pool = client.connection_pool
        self._make = lambda: pool.connection_class(**pool.connection_kwargs)
        # list.pop()/append() are atomic: threads (werkzeug's, the journal writer's) each
        # take a connection of their own.
        self._idle: list[tuple[Any, float]] = []  # (connection, idle since)
        self._pid = os.getpid()

    def script(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA, loading the script first when Redis does not have it (yet, or after
        a restart or SCRIPT FLUSH)."""
        call = ("EVALSHA", script.sha, len(keys), *keys, *args)
        conn = self._take()
        try:
            conn.send_command(*call)
            try:
                reply = conn.read_response()
            except redis.exceptions.NoScriptError:
                conn.send_command("SCRIPT", "LOAD", script.script)
                conn.read_response()
                conn.send_command(*call)
                reply = conn.read_response()
        except BaseException:
            conn.disconnect()
            raise
        self._idle.append((conn, time.monotonic()))
        return reply

    def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Several commands in one round trip (no MULTI: each is atomic on its own)."""
        conn = self._take()
        try:
            conn.send_packed_command(conn.pack_commands(commands))
            replies = [conn.read_response() for _ in commands]
        except BaseException:
            conn.disconnect()
            raise
        self._idle.append((conn, time.monotonic()))
        return replies

    def _take(self) -> Any:
        if self._pid != os.getpid():  # a forked worker must not share its parent's sockets
            self._idle, self._pid = [], os.getpid()
        while self._idle:
            conn, since = self._idle.pop()
            if time.monotonic() - since < CHECK_AFTER_IDLE_SECONDS:
                return conn
            try:
                # Anything to read on an idle connection means it is finished (Redis
                # restarted, closed it as idle): send nothing on it.
                if not conn.can_read():
                    return conn
            except (redis.ConnectionError, OSError):
                pass
            conn.disconnect()
        return self._make()

    def drop_idle(self) -> None:
        while self._idle:
            self._idle.pop()[0].disconnect()
