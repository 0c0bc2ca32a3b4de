"""Runs selected checks against a target and reports: progress, failures, summary, JUnit.

One result per (layer, check, operation). The CLI prints the report; the pytest plugin
turns each result into a test. Reports never hide the key: the curl lines are meant to
be pasted on the machine that ran the kit.
"""

from __future__ import annotations

import sys
import time
import traceback
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

# defaults, schema_layer, semantics and stateful are imported for their @check registrations.
from contract_tests import defaults, junit, schema_layer, semantics, stateful  # noqa: F401
from contract_tests.registry import (
    LAYERS,
    REGISTRY,
    Check,
    CheckFailure,
    CheckSkipped,
    duration,
)
from contract_tests.target import Options, Target, Throttled

PASSED, FAILED, SKIPPED, ERROR = "passed", "failed", "skipped", "error"
# The target's rate limit (or --max-requests) kept the check from finishing: no verdict.
INCONCLUSIVE = "inconclusive"
MARKS = {PASSED: "ok", FAILED: "FAIL", SKIPPED: "skip", ERROR: "ERROR", INCONCLUSIVE: "INCON"}


@dataclass
class Result:
    layer: str
    check: str
    operation: str
    outcome: str
    seconds: float
    failure: CheckFailure | None = None
    message: str = ""  # why skipped or inconclusive, or the traceback of an error
    curl: str | None = None  # inconclusive: the last answer that said the key was spent

    @property
    def label(self) -> str:
        return f"{self.layer}/{self.check}[{self.operation}]"


def run_one(target: Target, item: Check, operation: str) -> Result:
    started = time.monotonic()
    outcome, failure, message, curl = PASSED, None, "", None
    try:
        item.run(target, operation)
    except CheckFailure as exc:
        outcome, failure = FAILED, exc
    except CheckSkipped as exc:
        outcome, message = SKIPPED, str(exc)
    except Throttled as exc:
        outcome, message, curl = INCONCLUSIVE, exc.reason, exc.curl
    except Exception:  # a crash in a check (or the connection) is reported, not hidden
        outcome, message = ERROR, traceback.format_exc(limit=6)
    seconds = time.monotonic() - started
    return Result(item.layer, item.name, operation, outcome, seconds, failure, message, curl)


def selected(options: Options) -> list[tuple[Check, str]]:
    pairs = REGISTRY.select(options.select, read_only=options.read_only)
    return sorted(pairs, key=lambda pair: LAYERS.index(pair[0].layer))


def run(
    options: Options,
    progress: Callable[[Result, int, int], None] | None = None,
    target: Target | None = None,
) -> tuple[list[Result], Target]:
    target = target or Target(options)
    pairs = selected(options)
    results = []
    for index, (item, operation) in enumerate(pairs, start=1):
        result = run_one(target, item, operation)
        results.append(result)
        if progress:
            progress(result, index, len(pairs))
    return results, target


def exit_code(results: Iterable[Result]) -> int:
    """0 conforms, 1 drift found (or a check crashed), 3 no drift but some inconclusive."""
    outcomes = {r.outcome for r in results}
    if outcomes & {FAILED, ERROR}:
        return 1
    return 3 if INCONCLUSIVE in outcomes else 0


def progress_printer(
    stream: TextIO | None = None, eta: Callable[[], float | None] | None = None
) -> Callable[[Result, int, int], None]:
    """One line per result; ``eta()`` (seconds left, or None) is appended when given."""

    def show(result: Result, index: int, total: int) -> None:
        out = stream or sys.stderr  # looked up late, so redirections apply
        left = eta() if eta and index < total else None
        tail = f", ETA {duration(left)}" if left is not None else ""
        out.write(
            f"[{index:>3}/{total}] {MARKS[result.outcome]:<5} {result.label}"
            f" ({result.seconds:.1f}s{tail})\n"
        )
        out.flush()

    return show


def format_report(
    results: Iterable[Result], options: Options, requests_sent: int, waited: float = 0.0
) -> str:
    results = list(results)
    lines = []
    bad = [r for r in results if r.outcome in (FAILED, ERROR)]
    for number, result in enumerate(bad, start=1):
        lines.append(f"{number}. {result.layer} / {result.check} / {result.operation}")
        if result.failure is not None:
            lines.append(f"   expected: {result.failure.expected}")
            lines.append(f"   actual:   {result.failure.actual}")
            if result.failure.curl:
                lines.append(f"   reproduce: {result.failure.curl}")
        else:
            lines.append("   the check itself crashed:")
            lines.extend("   " + line for line in result.message.rstrip().splitlines())
        lines.append("")
    lines.extend(_inconclusive_lines(results))
    lines.append(summary_table(results))
    counts = Counter(r.outcome for r in results)
    lines.append(
        f"{counts[PASSED]} passed, {counts[FAILED]} failed, {counts[ERROR]} errors,"
        f" {counts[SKIPPED]} skipped, {counts[INCONCLUSIVE]} inconclusive;"
        f" {requests_sent} requests to {options.base_url};"
        f" seed {options.seed} (rerun with --seed {options.seed})"
        + (f"; waited {duration(waited)} for the target's rate limit" if waited else "")
    )
    return "\n".join(lines) + "\n"


def _inconclusive_lines(results: list[Result]) -> list[str]:
    """Inconclusive checks grouped by why: one run-out budget usually stops many."""
    groups: dict[tuple[str, str | None], list[Result]] = {}
    for result in results:
        if result.outcome == INCONCLUSIVE:
            groups.setdefault((result.message, result.curl), []).append(result)
    lines = []
    for (reason, curl), members in groups.items():
        lines.append(f"INCONCLUSIVE ({len(members)}): not judged, the rate limit stopped them")
        lines.append(f"   why: {reason}")
        if curl:
            lines.append(f"   {curl}")
        labels = ", ".join(r.label for r in members[:6])
        more = f" and {len(members) - 6} more" if len(members) > 6 else ""
        lines.append(f"   checks: {labels}{more}")
        lines.append("")
    if groups:
        lines.append(
            "No drift was found in what ran; size the run to the key's budget"
            " (--max-requests N, --select) or rerun when the window resets."
        )
        lines.append("")
    return lines


def summary_table(results: list[Result]) -> str:
    rows: dict[tuple[str, str], Counter] = {}
    for result in results:
        rows.setdefault((result.layer, result.check), Counter())[result.outcome] += 1
    header = ("layer", "check", "passed", "failed", "skipped", "inconclusive")
    body = [
        (
            layer,
            name,
            str(c[PASSED]),
            str(c[FAILED] + c[ERROR]),
            str(c[SKIPPED]),
            str(c[INCONCLUSIVE]),
        )
        for (layer, name), c in rows.items()
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(row) for row in body), rule])


def write_junit(results: list[Result], path: Path, options: Options) -> None:
    """One <testcase> per (layer, check, operation): classname layer.check, name operation."""
    counts = Counter(r.outcome for r in results)
    suite = junit.suite(
        "quimbi-contract",
        tests=len(results),
        failures=counts[FAILED],
        errors=counts[ERROR],
        skipped=counts[SKIPPED] + counts[INCONCLUSIVE],
        seconds=sum(r.seconds for r in results),
        properties=[("base_url", options.base_url), ("seed", str(options.seed))],
    )
    for result in results:
        case = junit.case(suite, f"{result.layer}.{result.check}", result.operation, result.seconds)
        if result.failure is not None:
            failure = result.failure
            element = ET.SubElement(case, "failure", message=f"expected {failure.expected}")
            element.text = f"expected: {failure.expected}\nactual: {failure.actual}\n" + (
                f"reproduce: {failure.curl}\n" if failure.curl else ""
            )
        elif result.outcome == ERROR:
            ET.SubElement(case, "error", message="check crashed").text = result.message
        elif result.outcome == SKIPPED:
            ET.SubElement(case, "skipped", message=result.message)
        elif result.outcome == INCONCLUSIVE:
            element = ET.SubElement(case, "skipped", message=f"inconclusive: {result.message}")
            element.text = f"{result.curl}\n" if result.curl else None
    junit.write(suite, path)
