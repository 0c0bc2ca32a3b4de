"""Counters and the fault-rule list: the state faults and rate limits keep.

One small interface, :class:`Counters`, so that several server processes can share the
state through Redis later (same methods, atomic there too). :class:`MemoryCounters` is
the in-process implementation: thread-safe, with lazy expiry. It never interprets keys
or rules; ``sandbox.faults`` and ``sandbox.ratelimit`` own their meaning.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol


class Counters(Protocol):
    """Integer counters with optional expiry, plus an ordered list of rule documents."""

    def incr(self, key: str, by: int = 1, ttl_seconds: float | None = None) -> int:
        """Add ``by`` to ``key`` (absent counts as 0) and return the new value, atomically.

        ``ttl_seconds`` sets the expiry when the counter is created; later calls keep it.
        """

    def get(self, key: str) -> int:
        """The counter's value; 0 when absent or expired."""

    def delete(self, prefix: str) -> int:
        """Remove every counter whose key starts with ``prefix``; return how many."""

    def counts(self, prefix: str) -> dict[str, int]:
        """Every live counter whose key starts with ``prefix``, by key (a report's read)."""

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

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._values: dict[str, int] = {}
        self._expires: dict[str, float] = {}
        self._rules: dict[str, dict[str, Any]] = {}
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

    def incr(self, key: str, by: int = 1, ttl_seconds: float | None = None) -> int:
        with self._lock:
            now = self._now()
            self._writes += 1
            if self._writes % self._SWEEP_EVERY == 0:
                self._sweep(now)  # windows nobody asks about again must still go
            if not self._live(key, now):
                self._values[key] = 0
                if ttl_seconds is not None:
                    self._expires[key] = now + ttl_seconds
            self._values[key] += by
            return self._values[key]

    def get(self, key: str) -> int:
        with self._lock:
            return self._values[key] if self._live(key, self._now()) else 0

    def delete(self, prefix: str) -> int:
        with self._lock:
            doomed = [key for key in self._values if key.startswith(prefix)]
            for key in doomed:
                self._values.pop(key, None)
                self._expires.pop(key, None)
            return len(doomed)

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
