"""The sandbox's idea of "now": real time, or a test clock that is frozen and moved.

Generated customers' histories end at the clock's *anchor* ("today" for them). In real
time the anchor is always now, so a generated customer looks the same on every day.
When the clock is frozen (``--now`` or ``POST /_sandbox/clock``) the anchor stays where
it was frozen and moving the clock ages everyone, generated and ingested alike, like a
Stripe test clock. The state is a small dict so a shared store can hold it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

_DURATION = re.compile(r"^\s*(-?\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_timestamp(value: str) -> datetime:
    """An RFC 3339 timestamp as an aware UTC datetime."""
    parsed = datetime.fromisoformat(value.replace("z", "Z"))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no UTC offset")
    return parsed.astimezone(UTC)


def parse_duration(value: str) -> timedelta:
    """'30d', '12h', '90m', '45s', '2w' (a leading '-' moves back)."""
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"duration {value!r}: use a number and one of s, m, h, d, w (e.g. 30d)")
    amount, unit = match.groups()
    return timedelta(**{_UNITS[unit]: int(amount)})


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class ClockState:
    """Where a clock stands: None values mean real time."""

    def __init__(self, frozen_at: datetime | None = None, anchor: datetime | None = None):
        self.frozen_at = frozen_at
        self.anchor = anchor if anchor is not None else frozen_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "frozen_at": iso(self.frozen_at) if self.frozen_at else None,
            "anchor": iso(self.anchor) if self.anchor else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ClockState:
        data = data or {}
        frozen = data.get("frozen_at")
        anchor = data.get("anchor")
        return cls(
            parse_timestamp(frozen) if frozen else None,
            parse_timestamp(anchor) if anchor else None,
        )


class Clock:
    """Real time unless frozen. State lives behind ``load``/``save`` so it can be shared."""

    def __init__(
        self,
        frozen_at: datetime | None = None,
        *,
        real_now: Callable[[], datetime] = lambda: datetime.now(UTC),
        load: Callable[[], dict[str, Any] | None] | None = None,
        save: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._real_now = real_now
        self._lock = threading.Lock()
        self._local: dict[str, Any] = ClockState(frozen_at).to_dict()
        self._load = load or (lambda: self._local)
        self._save = save or self._keep_local
        self._initial = ClockState(frozen_at)
        self._parsed: tuple[tuple[Any, Any], ClockState] | None = None
        if load is not None and frozen_at is not None:
            self._save(self._initial.to_dict())

    def _keep_local(self, state: dict[str, Any]) -> None:
        self._local = state

    def state(self) -> ClockState:
        raw = self._load() or {}
        seen = (raw.get("frozen_at"), raw.get("anchor"))
        parsed = self._parsed
        if parsed is None or parsed[0] != seen:  # parsing timestamps on every read is slow
            parsed = self._parsed = (seen, ClockState.from_dict(raw))
        return parsed[1]

    def day_and_age(self) -> tuple[date, int]:
        """Today's date on this clock and :meth:`elapsed_days`: all that generated and
        ingested histories depend on (``days_between`` counts calendar days)."""
        state = self.state()
        if state.frozen_at is None:
            return self._real_now().date(), 0
        return state.frozen_at.date(), _age(state)

    def now(self) -> datetime:
        frozen = self.state().frozen_at
        return frozen if frozen is not None else self._real_now()

    def elapsed_days(self) -> int:
        """Whole days the clock has moved past the anchor (how much generated data aged):
        :meth:`day_and_age`'s age, without asking real time for today's date."""
        return _age(self.state())

    def set(self, at: datetime) -> None:
        """Freeze at ``at``. The first freeze also sets the anchor; later ones move time."""
        with self._lock:
            state = self.state()
            anchor = state.anchor if state.frozen_at is not None else self._real_now()
            self._save(ClockState(at.astimezone(UTC), anchor).to_dict())

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            state = self.state()
            if state.frozen_at is None:
                state = ClockState(self._real_now())
            self._save(ClockState(state.frozen_at + delta, state.anchor).to_dict())

    def restore(self, state: dict[str, Any]) -> None:
        """Take over a state exported by ``state().to_dict()``."""
        with self._lock:
            self._save(ClockState.from_dict(state).to_dict())

    def reset(self) -> None:
        """Back to how the sandbox started (real time, or the --now moment)."""
        with self._lock:
            self._save(self._initial.to_dict())

    def describe(self) -> dict[str, Any]:
        state = self.state()
        return {
            "now": iso(self.now()),
            "frozen": state.frozen_at is not None,
            "anchor": iso(state.anchor) if state.anchor else None,
            "elapsed_days": self.elapsed_days(),
        }


def days_between(earlier: datetime, later: datetime) -> int:
    """Whole calendar days from ``earlier`` to ``later`` (never negative)."""
    return max((later.date() - earlier.date()).days, 0)


def _age(state: ClockState) -> int:
    """Whole days a frozen clock stands past its anchor (0 for real time)."""
    if state.frozen_at is None or state.anchor is None:
        return 0
    return (state.frozen_at.date() - state.anchor.date()).days
