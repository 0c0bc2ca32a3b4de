"""The run's plan, printed before the first check: how many requests the selection will
send, what the key has left, the pace, the wall time, and whether it fits the hour.

The estimate counts what each check sends. The semantic checks send a fixed number of
requests per example (exact). The schema layer sends ``max_examples`` valid and as many
invalid requests per operation, plus ignored_auth's two probes. The stateful layers'
sequences are drawn by Hypothesis, so their count is a per-sequence average measured
against the sandbox. ``--max-requests N`` picks the largest ``--max-examples`` whose
estimate fits N with a margin for that variance; the session never sends more than N.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from contract_tests.defaults import DEFAULTS_PER_OPERATION
from contract_tests.registry import Check, duration
from contract_tests.target import Options, Target, Throttled, Window

# One cheap read of the key's budget before the first check (it counts as one request).
PROBE_PATH = "/api/insights/benchmarks/retail"
# The API reference documents 100/minute and 1000/hour per key; a target that reports
# only its minute window (X-RateLimit-Reset within a minute) is assumed to keep that ratio.
DOCUMENTED_HOUR_PER_MINUTE = 10
# A window reported as resetting further away than this is the hour's.
MINUTE_WINDOW_SECONDS = 61
# Requests per state-machine sequence, averaged over seeds against the sandbox.
STATEFUL_PER_SEQUENCE = 9.5
STATEFUL_PER_SEQUENCE_TWO_TENANTS = 12.8
LINKS_PER_SEQUENCE = 4.8
SCHEMA_AUTH_PROBES = 2  # ignored_auth, once per operation: without a key, with a wrong one
# --max-requests sizes the run so the estimate stays this far under the cap.
SIZING_MARGIN = 0.85
POST_OPERATIONS = {
    "analyzeCustomer",
    "predictChurn",
    "predictLtv",
    "generateMessage",
    "recommendActions",
    "ingestOrders",
    "ingestInteractions",
}


def _n(m: int, limit: int) -> int:
    """How many examples ``semantics.run_examples`` draws at --max-examples ``m``."""
    return max(2, min(m, limit))


# Per semantic check: requests at --max-examples m for an operation (see semantics.py).
SEMANTIC_COSTS: dict[str, Callable[[int, str], int]] = {
    "error_envelope": lambda m, op: 6 + _n(m, 10) if op in POST_OPERATIONS else 4,
    "unauthenticated_is_401": lambda m, op: 2,
    "deterministic_answers": lambda m, op: 2,
    "intelligence_consistency": lambda m, op: 3 * (3 + _n(m, 8)),
    "churn_level_thresholds": lambda m, op: 3 + _n(m, 12),
    "metrics_arithmetic": lambda m, op: 3 + _n(m, 8),
    "ltv_interval_contains_forecast": lambda m, op: _n(m, 10),
    "benchmark_percentiles_ordered": lambda m, op: 3,
    "rate_limit_headers": lambda m, op: 2,
    "documented_test_customers": lambda m, op: 3,
    "documented_defaults": lambda m, op: DEFAULTS_PER_OPERATION[op],
}


def _unit_cost(item: Check, operation: str, options: Options, m: int) -> tuple[str, float]:
    """(what the check shares its requests with, how many that is): the schema checks of
    one operation share one exploration, the stateful checks one machine."""
    if item.layer == "schema":
        return f"schema:{operation}", 2 * m + SCHEMA_AUTH_PROBES
    if item.name == "stateful_links":
        return "links", max(2, m // 5) * LINKS_PER_SEQUENCE
    if item.layer == "stateful":
        per = STATEFUL_PER_SEQUENCE_TWO_TENANTS if options.second_api_key else STATEFUL_PER_SEQUENCE
        return "stateful", max(3, m // 3) * per
    cost = SEMANTIC_COSTS.get(item.name)
    # A check this table does not know yet: one valid and one invalid request per example.
    return f"{item.name}:{operation}", cost(m, operation) if cost else 2 * m


def estimate(pairs: list[tuple[Check, str]], options: Options, m: int | None = None) -> int:
    """Requests the selected (check, operation) pairs send at --max-examples ``m``, plus
    the budget probe."""
    m = m or options.max_examples
    units: dict[str, float] = {}
    for item, operation in pairs:
        if item.name == "tenant_isolation" and not options.second_api_key:
            continue  # skipped without a second key
        unit, cost = _unit_cost(item, operation, options, m)
        units[unit] = cost
    return 1 + round(sum(units.values()))


def size_to(
    pairs: list[tuple[Check, str]], options: Options, max_requests: int
) -> tuple[Options, bool]:
    """Options with the largest --max-examples whose estimate fits ``max_requests``
    (with a margin); False when even one example per operation does not fit."""
    for m in range(options.max_examples, 0, -1):
        if estimate(pairs, options, m) <= SIZING_MARGIN * max_requests:
            return dataclasses.replace(options, max_examples=m), True
    return dataclasses.replace(options, max_examples=1), False


@dataclass
class Plan:
    requests: int
    checks: int
    options: Options
    window: Window | None  # the key's budget as the probe's answer told it
    probe_error: str | None = None
    sized_from: int | None = None  # --max-examples before --max-requests sized the run
    sized_fits: bool = True

    @property
    def reserve(self) -> int:
        return math.ceil(self.options.rate_headroom * self.window.limit) if self.window else 0

    @property
    def per_minute(self) -> float | None:
        """The pace the run will keep, in requests a minute (None: as fast as it answers)."""
        bound = self.options.rate_per_minute
        if self.window is None:
            return self.options.fallback_rate_per_minute
        usable = max(1, self.window.limit - self.reserve)
        return min(bound, usable) if bound else usable

    @property
    def hour_reported(self) -> bool:
        return self.window is not None and self.window.reset - time.time() > MINUTE_WINDOW_SECONDS

    @property
    def hour_left(self) -> int | None:
        """Requests the key may still send this hour, the headroom kept (None: unknown)."""
        if self.window is None:
            return None
        if self.hour_reported:
            return self.window.remaining - self.reserve
        return DOCUMENTED_HOUR_PER_MINUTE * self.window.limit - self.reserve

    @property
    def fits_hour(self) -> bool:
        left = self.hour_left
        return left is None or self.requests <= left

    @property
    def seconds(self) -> float:
        return 60.0 * self.requests / self.per_minute if self.per_minute else 0.0

    def eta(self, sent: int, elapsed: float) -> float:
        """Seconds left: the requests not sent yet, at the slower of the planned pace and
        the pace so far (waits included)."""
        planned = 60.0 / self.per_minute if self.per_minute else 0.0
        observed = elapsed / sent if sent else 0.0
        return max(0, self.requests - sent) * max(planned, observed)

    def describe(self) -> str:
        o = self.options
        lines = [
            f"plan: ~{self.requests} requests for {self.checks} checks"
            f" (--max-examples {o.max_examples}"
            + (
                f", sized from {self.sized_from} by --max-requests {o.max_requests}"
                if self.sized_from
                else ""
            )
            + ")"
        ]
        w = self.window
        if self.probe_error:
            lines.append(f"key: {self.probe_error}")
        elif w is None:
            fallback = o.fallback_rate_per_minute
            lines.append(
                "key: the target sends no X-RateLimit-* headers; pacing at"
                + (f" {fallback:g}/min (--rate)" if fallback else " no limit (--rate 0)")
            )
        else:
            which = "this hour" if self.hour_reported else "this minute"
            lines.append(
                f"key: {w.remaining} left {which} (X-RateLimit-Remaining; Limit {w.limit});"
                f" {self.reserve} kept for other clients (--rate-headroom"
                f" {o.rate_headroom:.0%})"
            )
        pace = f"{self.per_minute:g}/min" if self.per_minute else "unpaced"
        bound = f", --rate {o.rate_per_minute:g}/min the bound" if o.rate_per_minute else ""
        source = "by the target's headers" if w else "no headers: the --rate fallback"
        lines.append(f"pace: {pace} ({source}{bound}); about {duration(self.seconds)}")
        lines.append(self._hour_line())
        if not self.sized_fits:
            lines.append(
                f"--max-requests {o.max_requests} is below the estimate even at one example"
                " per operation: checks past the cap end inconclusive; narrow with --select"
            )
        return "\n".join(f"quimbi-contract: {line}" for line in lines) + "\n"

    def _hour_line(self) -> str:
        left = self.hour_left
        if left is None:
            return "hour: unknown (no rate-limit headers)"
        way_out = (
            "checks that cannot get past the limit end inconclusive (exit 3); size the run"
            f" with --max-requests {max(left, 1)} or narrow it with --select"
        )
        if self.hour_reported:
            if self.fits_hour:
                return f"hour: fits ({left} left, reported)"
            return f"hour: DOES NOT FIT ({max(left, 0)} left, reported): {way_out}"
        # Only the minute window is reported: the hour has at least what the minute has.
        documented = (
            f"the documented {DOCUMENTED_HOUR_PER_MINUTE}x the minute limit,"
            f" {left} after the headroom"
        )
        if self.fits_hour:
            return (
                f"hour: fits if the key's hour is unused ({documented}); the target reports"
                " only its minute window now, so a key other runs used this hour may run"
                " dry: those checks end inconclusive (exit 3)"
            )
        return f"hour: DOES NOT FIT even an unused hour ({documented}): {way_out}"


def probe(target: Target) -> tuple[Window | None, str | None]:
    """The key's budget from one answer's headers (the pacer learns it too)."""
    try:
        target.call("GET", PROBE_PATH)
    except Throttled as throttled:
        return None, f"spent: {throttled.reason}"
    return target.session.pacer.windows.get(target.options.api_key), None
