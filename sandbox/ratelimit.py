"""Per-key rate limits: 100 requests a minute and 1000 an hour, as the API documents.

The algorithm (also in README "Sandbox decisions"): **fixed windows aligned to the
clock**. A key has one counter per calendar minute (``floor(now / 60)``) and one per
hour (``floor(now / 3600)``) of Unix time. A request increments both, atomically, in
the shared :class:`~sandbox.store.counters.Counters`; if either is now over its limit
the request is refused (429) and both increments are taken back, so refused requests
never count. Hence:

- ``X-RateLimit-Limit`` is the per-minute limit; ``X-RateLimit-Remaining`` what is left
  in the tighter of the two windows; ``X-RateLimit-Reset`` the end (Unix seconds) of
  that window.
- ``Retry-After`` is the whole number of seconds, rounded up and at least 1, until the
  window that refused the request ends: the first moment a retry would be allowed.
- Fixed windows admit a burst of up to twice the limit across a window boundary; that
  is the price of exact, explainable reset times.

Counters are keyed by a digest of the API key, never the key itself, and never shared
between keys. The clock is an injectable ``now() -> Unix seconds`` (default
``time.time``), separate from the sandbox's test clock, so tests move it without
sleeping. No Flask here.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.store.counters import Counters

MINUTE, HOUR = 60, 3600
_SPEC = re.compile(r"^(\d+)/(min|minute|hour|h)$")


class RateLimitSyntaxError(ValueError):
    """A --rate-limit value that is not off, default or '<N>/min,<M>/hour'."""


@dataclass(frozen=True)
class Limits:
    per_minute: int = 100
    per_hour: int = 1000


DEFAULT_LIMITS = Limits()


def parse_rate_limit(text: str) -> Limits | None:
    """``off`` (None), ``default`` (100/min, 1000/hour) or ``<N>/min,<M>/hour``.

    Either part may be left out; it keeps its default.
    """
    compact = text.replace(" ", "").lower()
    if compact == "off":
        return None
    if compact == "default":
        return DEFAULT_LIMITS
    values = {"minute": DEFAULT_LIMITS.per_minute, "hour": DEFAULT_LIMITS.per_hour}
    seen = set()
    for part in compact.split(","):
        match = _SPEC.match(part)
        if match is None or int(match.group(1)) < 1:
            raise RateLimitSyntaxError(
                f"rate limit {text!r}: expected off, default or '<N>/min,<M>/hour' (N, M >= 1)"
            )
        unit = "minute" if match.group(2).startswith("min") else "hour"
        if unit in seen:
            raise RateLimitSyntaxError(f"rate limit {text!r}: {unit} given twice")
        seen.add(unit)
        values[unit] = int(match.group(1))
    return Limits(values["minute"], values["hour"])


@dataclass(frozen=True)
class Quota:
    """The verdict on one request and what the rate-limit headers say about it."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # Unix seconds when the reported window ends
    retry_after: int | None = None  # set when refused

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(self.remaining)),
            ("X-RateLimit-Reset", str(self.reset)),
        ]


@dataclass(frozen=True, slots=True)
class Ahead:
    """A request counted before the app ran (:meth:`RateLimiter.admit_ahead`)."""

    now: float  # the rate-limit clock when it was counted
    # The store's reply to that count (``Counters.incr_many``'s ``ahead``), or while it
    # is on its way (admit_ahead's), the future of it.
    reply: Any


@functools.lru_cache(maxsize=1024)  # a handful of keys, each asked on every request
def key_id(api_key: str) -> str:
    """What the store knows a key by: a digest, so no key is ever written down."""
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()[:24]


class RateLimiter:
    """Fixed-window limits per API key over a :class:`Counters` store."""

    def __init__(
        self,
        counters: Counters,
        limits: Limits | None = DEFAULT_LIMITS,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._counters = counters
        self.limits = limits
        self._now = now

    @staticmethod
    def _window(now: float, length: int) -> tuple[int, int]:
        start = int(now // length) * length
        return start, start + length

    def _windows(self, api_key: str, now: float) -> list[tuple[str, int, int, int]]:
        """(counter, length, limit, end) of the key's minute and hour windows at ``now``."""
        limits = self.limits
        assert limits is not None
        ident = key_id(api_key)
        windows = []
        for name, length, limit in (("m", MINUTE, limits.per_minute), ("h", HOUR, limits.per_hour)):
            start, end = self._window(now, length)
            windows.append((f"ratelimit:{ident}:{name}:{start}", length, limit, end))
        return windows

    @staticmethod
    def _counted(windows: list[tuple[str, int, int, int]]) -> list[tuple[str, int, float | None]]:
        """What admitting a request adds to the counters of its ``windows``: one each,
        kept a second past the window."""
        return [(counter, 1, length + 1) for counter, length, _, _ in windows]

    def admit_ahead(self, api_key: str, tenant: str) -> Ahead | None:
        """:meth:`admit`'s store round trip, sent now on the event loop by a store that
        can (Redis): an Ahead whose ``reply`` is the future of the store's reply; once
        that is in, an Ahead holding it goes to :meth:`admit`, which then sends nothing.
        None: the store can't; :meth:`admit` makes the call itself."""
        send = getattr(self._counters, "incr_many_ahead", None)
        if send is None:
            return None
        now = self._now()
        counted = self._counted(self._windows(api_key, now)) if self.limits is not None else []
        reply = send(counted, tenant)
        return None if reply is None else Ahead(now, reply)

    def admit(self, api_key: str, tenant: str | None = None, ahead: Ahead | None = None) -> Quota:
        """Count one request for ``api_key`` and say whether it may go on. ``tenant``:
        the key's, for the store's view of the request (``Counters.incr_many``).
        ``ahead``: :meth:`admit_ahead`'s result for this key and tenant; the request was
        counted then, at its moment (a window that ended since is still the one)."""
        now = ahead.now if ahead is not None else self._now()
        reply = ahead.reply if ahead is not None else None
        limits = self.limits
        if limits is None:  # off: nothing counted, the full documented quota reported
            if tenant is not None:
                self._counters.incr_many((), tenant, ahead=reply)
            _, end = self._window(now, MINUTE)
            full = DEFAULT_LIMITS.per_minute
            return Quota(True, full, full, end)
        windows = self._windows(api_key, now)
        counts = self._counters.incr_many(self._counted(windows), tenant, ahead=reply)
        windows = [(w[0], count, w[2], w[3]) for w, count in zip(windows, counts, strict=True)]
        refusing = [w for w in windows if w[1] > w[2]]
        if refusing:
            self._counters.incr_many([(counter, -1, None) for counter, _, _, _ in windows])
            free_at = max(end for _, _, _, end in refusing)
            return Quota(False, limits.per_minute, 0, free_at, _seconds_until(free_at, now))
        # The tighter window is the one to report; on a tie, the minute (it resets first).
        _, count, limit, end = min(windows, key=lambda w: w[2] - w[1])
        return Quota(True, limits.per_minute, limit - count, end)

    def exhausted(self) -> Quota:
        """A quota with nothing left until the current minute ends (injected 429s)."""
        now = self._now()
        _, end = self._window(now, MINUTE)
        limit = (self.limits or DEFAULT_LIMITS).per_minute
        return Quota(False, limit, 0, end, _seconds_until(end, now))

    def reset(self, api_key: str | None = None) -> int:
        """Forget the windows of one key, or of every key."""
        prefix = "ratelimit:" if api_key is None else f"ratelimit:{key_id(api_key)}:"
        return self._counters.delete(prefix)


def _seconds_until(moment: float, now: float) -> int:
    return max(1, math.ceil(moment - now))
