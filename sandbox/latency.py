"""Latency profiles: how long the sandbox holds an answer, as a pure function of a draw.

Three shapes, one text syntax shared by ``--latency``, ``X-Sandbox-Latency`` and the
``latency`` field of fault rules:

    250                fixed: 250 ms
    20-80              uniform between 20 and 80 ms
    p50=80,p99=400     lognormal with that median and 99th percentile

A profile never draws its own randomness: :meth:`LatencyProfile.seconds` takes a
uniform draw in (0, 1) (from a stable hash, see ``sandbox.faults``), so the same seed
gives the same delays. Every delay is capped by the caller's cap. No Flask here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from statistics import NormalDist

_Z99 = NormalDist().inv_cdf(0.99)
_NUMBER = r"\d+(?:\.\d+)?"
_FIXED = re.compile(rf"^({_NUMBER})$")
_UNIFORM = re.compile(rf"^({_NUMBER})-({_NUMBER})$")
_LOGNORMAL = re.compile(rf"^p50=({_NUMBER}),p99=({_NUMBER})$")
MAX_MS = 24 * 3600 * 1000  # anything longer is a typo; the hold cap applies anyway


class LatencySyntaxError(ValueError):
    """A latency text that is none of the three shapes; the message shows them."""


@dataclass(frozen=True)
class LatencyProfile:
    kind: str  # fixed | uniform | lognormal
    low_ms: float  # fixed: the delay; uniform: the minimum; lognormal: p50
    high_ms: float  # fixed: the delay; uniform: the maximum; lognormal: p99
    text: str

    def seconds(self, draw: float, cap_seconds: float) -> float:
        """The delay for a uniform ``draw`` in (0, 1), never above ``cap_seconds``."""
        if self.kind == "fixed":
            ms = self.low_ms
        elif self.kind == "uniform":
            ms = self.low_ms + (self.high_ms - self.low_ms) * draw
        else:
            mu = math.log(self.low_ms)
            sigma = (math.log(self.high_ms) - mu) / _Z99
            ms = math.exp(mu + sigma * NormalDist().inv_cdf(draw))
        return min(ms / 1000.0, cap_seconds)

    @property
    def varies(self) -> bool:
        return self.kind != "fixed" and self.low_ms != self.high_ms


def parse_latency(text: str | int | float) -> LatencyProfile:
    """``250``, ``20-80`` or ``p50=80,p99=400`` (milliseconds) as a profile."""
    if isinstance(text, bool):
        raise LatencySyntaxError("latency must be a number of milliseconds or a text")
    if isinstance(text, int | float):
        text = format(text, "g")
    compact = str(text).replace(" ", "").lower()
    hint = "expected '250' (ms), '20-80' (uniform ms) or 'p50=80,p99=400' (lognormal ms)"
    if match := _FIXED.match(compact):
        value = float(match.group(1))
        profile = LatencyProfile("fixed", value, value, compact)
    elif match := _UNIFORM.match(compact):
        low, high = float(match.group(1)), float(match.group(2))
        if low > high:
            raise LatencySyntaxError(f"latency {text!r}: minimum above maximum")
        profile = LatencyProfile("uniform", low, high, compact)
    elif match := _LOGNORMAL.match(compact):
        p50, p99 = float(match.group(1)), float(match.group(2))
        if p50 <= 0 or p99 < p50:
            raise LatencySyntaxError(f"latency {text!r}: needs 0 < p50 <= p99")
        profile = LatencyProfile("lognormal", p50, p99, compact)
    else:
        raise LatencySyntaxError(f"latency {text!r}: {hint}")
    if profile.high_ms > MAX_MS:
        raise LatencySyntaxError(f"latency {text!r}: at most {MAX_MS} ms")
    return profile
