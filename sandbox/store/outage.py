"""A shared store's outage as one process sees it: refused calls and two log lines.

When Redis stops answering, every store call raises :class:`sandbox.errors.StoreUnavailable`
(``503 SERVICE_UNAVAILABLE`` with ``Retry-After``, ``details.store`` naming the store),
wherever the call is made: rate-limit counting, fault decisions, a view, the control API.
Instead of a traceback per request, :class:`Outage` logs one line when the outage starts
and one when the store answers again.

The state is per process: with ``--workers N`` each worker notices (and logs) the outage
and its end for itself; the pid in the line tells them apart.

While a failure is fresh (younger than ``RETRY_AFTER_SECONDS``) calls are refused without
asking Redis: the app runs on the server's event loop, so a Redis that hangs instead of
refusing would otherwise hold every request for the client's socket timeout. The first
call after that asks again, and its success ends the outage. No Flask and no redis here.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from sandbox.errors import StoreUnavailable

RETRY_AFTER_SECONDS = 1

log = logging.getLogger("sandbox.store")


def store_name(url: str) -> str:
    """``url`` fit for answers and logs: a password becomes ``***``; the query (where
    redis-py also takes ``password=``) is left out."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if has_password else netloc
    # Built by hand: urlunsplit drops the empty host of unix:///path/redis.sock.
    return f"{parts.scheme}://{netloc}{parts.path}"


class Outage:
    """Whether the store is down in this process, and since when."""

    def __init__(
        self,
        store: str,
        *,
        secret: str | None = None,
        retry_after: int = RETRY_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.retry_after = retry_after
        self._secret = secret
        self._clock = clock
        self._lock = threading.Lock()
        self.down_since: float | None = None  # read unlocked on every call: None = up
        self._last_failure = 0.0

    def error(self) -> StoreUnavailable:
        return StoreUnavailable(self.store, self.retry_after)

    def refuse_while_fresh(self) -> None:
        """Raise at once while the last failure is under ``retry_after`` seconds old."""
        if self.down_since is not None and self._clock() - self._last_failure < self.retry_after:
            raise self.error()

    def failed(self, exc: BaseException) -> StoreUnavailable:
        """Record a call the store did not answer; the error to raise for it."""
        reason = f"{type(exc).__name__}: {exc}"
        if self._secret:
            reason = reason.replace(self._secret, "***")
        now = self._clock()
        with self._lock:
            starting = self.down_since is None
            if starting:
                self.down_since = now
            self._last_failure = now
        if starting:
            log.warning(
                "store %s unreachable (%s): answering 503 SERVICE_UNAVAILABLE until it is "
                "back [pid %d]",
                self.store,
                reason,
                os.getpid(),
            )
        return self.error()

    def answered(self) -> None:
        """Record a call the store answered: ends an outage, if there was one."""
        with self._lock:
            since, self.down_since = self.down_since, None
        if since is not None:
            log.warning(
                "store %s reachable again after %.1f s: answering normally [pid %d]",
                self.store,
                self._clock() - since,
                os.getpid(),
            )
