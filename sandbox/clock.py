"""The sandbox's idea of "now": the real time, or a frozen test time that can be moved."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


def parse_timestamp(value: str) -> datetime:
    """An RFC 3339 timestamp as an aware UTC datetime."""
    parsed = datetime.fromisoformat(value.replace("z", "Z"))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no UTC offset")
    return parsed.astimezone(UTC)


class Clock:
    """Real time unless frozen; ``advance`` moves a frozen clock forward."""

    def __init__(self, frozen_at: datetime | None = None) -> None:
        self._frozen_at = frozen_at
        self._lock = threading.Lock()

    def now(self) -> datetime:
        frozen = self._frozen_at
        return frozen if frozen is not None else datetime.now(UTC)

    def freeze(self, at: datetime) -> None:
        with self._lock:
            self._frozen_at = at.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._frozen_at = (self._frozen_at or datetime.now(UTC)) + delta

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None


def days_between(earlier: datetime, later: datetime) -> int:
    """Whole calendar days from ``earlier`` to ``later`` (never negative)."""
    return max((later.date() - earlier.date()).days, 0)
