"""Counters, short bounded lists and the fault-rule list: the state faults, rate limits,
coverage and retry judgement keep.

One small interface, :class:`Counters`, so that several server processes can share the
state through Redis later (same methods, atomic there too). :class:`MemoryCounters` is
the in-process implementation: thread-safe, with lazy expiry. It never interprets keys
or rules; ``sandbox.faults`` and ``sandbox.ratelimit`` own their meaning.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol


class Counters(Protocol):
    """Integer counters with optional expiry, plus an ordered list of rule documents."""

    def incr(self, key: str, by: int = 1, ttl_seconds: float | None = None) -> int:
        """Add ``by`` to ``key`` (absent counts as 0) and return the new value, atomically.

        ``ttl_seconds`` sets the expiry when the counter is created; later calls keep it.
        """

    def incr_many(
        self,
        items: Sequence[tuple[str, int, float | None]],
        tenant: str | None = None,
        ahead: Any = None,
    ) -> list[int]:
        """Each ``(key, by, ttl_seconds)`` as :meth:`incr`, all in one atomic step.

        With ``tenant``, a shared store also reads, in the same round trip, what the rest
        of the request reads (the rule list's version, the clock, the tenant's revision)
        and answers from that view until :meth:`end_request`. ``ahead``: the reply of
        that round trip made already, by a shared store's ``incr_many_ahead`` (async, on
        the server's loop) for the same items and tenant: nothing is sent again."""

    def end_request(self) -> None:
        """The request is answered: forget its view (see :meth:`incr_many`)."""

    def get(self, key: str) -> int:
        """The counter's value; 0 when absent or expired."""

    def delete(self, prefix: str) -> int:
        """Remove every counter whose key starts with ``prefix``; return how many."""

    def counts(self, prefix: str) -> dict[str, int]:
        """Every live counter whose key starts with ``prefix``, by key (a report's read)."""

    def exchange(
        self,
        key: str,
        item: str | None,
        keep: int,
        ttl_seconds: float,
        counts: Sequence[tuple[str, int]] = (),
        scope: str | None = None,
    ) -> tuple[list[int], list[str]]:
        """One atomic step over a bounded list and some counters: add each ``by`` to its
        counter, read the list at ``key``, then append ``item`` to it (keeping the newest
        ``keep``; the list expires ``ttl_seconds`` after this write) or, with ``item``
        None, delete it. Returns the counters' new values and the list as it was.

        Each item is stored as ``"<the last counter's new value> <item>"`` (``0`` with no
        counters): a reader learns where that counter stood when the item was added.
        ``scope`` (a tenant): what :meth:`lists_pending` is asked about."""

    def lists_pending(self, scope: str | None = None) -> bool:
        """False only when certainly no list (of ``scope``'s, if given) is stored; True
        when it cannot be known without a round trip. A caller can skip building a key
        it won't need."""

    def bump(self, keys: Sequence[str]) -> None:
        """Add 1 to each counter, the new values unneeded: a shared store may write
        them a moment later, off the request's path (its own reads wait for them)."""

    def add_rule(self, rule: dict[str, Any]) -> None:
        """Append a rule document (it has an ``id``); a rule with the same id is replaced."""

    def rules(self) -> list[dict[str, Any]]:
        """Rule documents in the order they were added."""

    def remove_rule(self, rule_id: str) -> bool:
        """Remove one rule; False when there was none with that id."""

    def clear_rules(self) -> int:
        """Remove every rule; return how many there were."""


class MemoryCounters:
    """Thread-safe in-memory :class:`Counters`.

    ``now`` is the clock expiry is measured on; the rate limiter passes its own, so a
    test that moves a fake clock also expires the windows it left behind.
    """

    _SWEEP_EVERY = 1024

    def __init__(self, now: Callable[[], float] = time.monotonic, max_lists: int = 10_000) -> None:
        self._now = now
        # A load test of distinct failing requests must not grow the process without end:
        # past this many lists the least recently written one goes.
        self._max_lists = max_lists
        self._values: dict[str, int] = {}
        self._expires: dict[str, float] = {}
        self._rules: dict[str, dict[str, Any]] = {}
        self._lists: dict[str, tuple[list[str], float]] = {}
        self._lock = threading.Lock()
        self._writes = 0

    def _live(self, key: str, now: float) -> bool:
        expires = self._expires.get(key)
        if expires is not None and expires <= now:
            self._values.pop(key, None)
            self._expires.pop(key, None)
            return False
        return key in self._values

    def _sweep(self, now: float) -> None:
        for key in [k for k, at in self._expires.items() if at <= now]:
            self._values.pop(key, None)
            self._expires.pop(key, None)
        for key in [k for k, (_, at) in self._lists.items() if at <= now]:
            del self._lists[key]

    def _incr(self, key: str, by: int, ttl_seconds: float | None, now: float) -> int:
        self._writes += 1
        if self._writes % self._SWEEP_EVERY == 0:
            self._sweep(now)  # windows nobody asks about again must still go
        if not self._live(key, now):
            self._values[key] = 0
            if ttl_seconds is not None:
                self._expires[key] = now + ttl_seconds
        self._values[key] += by
        return self._values[key]

    def incr(self, key: str, by: int = 1, ttl_seconds: float | None = None) -> int:
        with self._lock:
            return self._incr(key, by, ttl_seconds, self._now())

    def incr_many(
        self,
        items: Sequence[tuple[str, int, float | None]],
        tenant: str | None = None,
        ahead: Any = None,
    ) -> list[int]:
        with self._lock:
            now = self._now()
            return [self._incr(key, by, ttl, now) for key, by, ttl in items]

    def end_request(self) -> None:
        pass  # in memory every read is current: there is no view to forget

    def exchange(
        self,
        key: str,
        item: str | None,
        keep: int,
        ttl_seconds: float,
        counts: Sequence[tuple[str, int]] = (),
        scope: str | None = None,
    ) -> tuple[list[int], list[str]]:
        with self._lock:
            now = self._now()
            values = [self._incr(name, by, None, now) for name, by in counts]
            held = self._lists.pop(key, None)
            old = held[0] if held is not None and held[1] > now else []
            if item is not None:
                tagged = f"{values[-1] if values else 0} {item}"
                self._lists[key] = ([*old, tagged][-keep:], now + ttl_seconds)
                if len(self._lists) > self._max_lists:  # dicts keep insertion order
                    del self._lists[next(iter(self._lists))]
            return values, old

    def lists_pending(self, scope: str | None = None) -> bool:
        return bool(self._lists)

    def bump(self, keys: Sequence[str]) -> None:
        with self._lock:
            now = self._now()
            for key in keys:
                self._incr(key, 1, None, now)

    def get(self, key: str) -> int:
        with self._lock:
            return self._values[key] if self._live(key, self._now()) else 0

    def delete(self, prefix: str) -> int:
        with self._lock:
            doomed = [key for key in self._values if key.startswith(prefix)]
            for key in doomed:
                self._values.pop(key, None)
                self._expires.pop(key, None)
            lists = [key for key in self._lists if key.startswith(prefix)]
            for key in lists:
                del self._lists[key]
            return len(doomed) + len(lists)

    def counts(self, prefix: str) -> dict[str, int]:
        with self._lock:
            now = self._now()
            found = [key for key in self._values if key.startswith(prefix)]
            return {key: self._values[key] for key in found if self._live(key, now)}

    def add_rule(self, rule: dict[str, Any]) -> None:
        with self._lock:
            self._rules.pop(rule["id"], None)
            self._rules[rule["id"]] = copy.deepcopy(rule)

    def rules(self) -> list[dict[str, Any]]:
        if not self._rules:  # asked on every request; usually there are none
            return []
        with self._lock:
            return [copy.deepcopy(rule) for rule in self._rules.values()]

    def remove_rule(self, rule_id: str) -> bool:
        with self._lock:
            return self._rules.pop(rule_id, None) is not None

    def clear_rules(self) -> int:
        with self._lock:
            count = len(self._rules)
            self._rules.clear()
            return count
