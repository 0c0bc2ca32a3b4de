"""Which documented answers each operation served, per tenant: what a client's tests tried.

The journal keeps the last requests one by one; coverage keeps *counts* in the store's
``Counters`` (one ``incr`` per request), so nothing is lost past the journal's size and
every worker of a shared store adds to the same numbers. ``GET /_sandbox/coverage``
reads them back against the answers ``openapi.yaml`` documents for each operation.
Pure Python: ``sandbox.api.pipeline.finish`` calls :meth:`Coverage.count`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sandbox.behaviour import KINDS as BEHAVIOUR_KINDS
from sandbox.fault_rules import FAULTS
from sandbox.store.counters import Counters

PREFIX = "coverage|"
# An unauthenticated request has no tenant; its 401 still exercised the operation.
NO_TENANT = "-"
# Faults whose answer the client never saw as such: the connection dropped, the body cut.
NOT_ANSWERS = {"reset", "hang", "malformed"}
LATENCY = "latency"


def answer_name(status: int | str, code: str | None) -> str:
    """How an answer is named in the report: ``200``, ``404 CUSTOMER_NOT_FOUND``."""
    return f"{status} {code}" if code else str(status)


def documented_answers(contract: Any) -> dict[str, list[str]]:
    """Operation id -> its documented answers, in the contract's order.

    A response whose examples name error codes is one answer per code; one without
    (a success) is its status alone."""
    found: dict[str, list[str]] = {}
    for path_item in contract.document.get("paths", {}).values():
        for spec_op in path_item.values():
            if not isinstance(spec_op, dict) or "operationId" not in spec_op:
                continue
            answers: list[str] = []
            for status, response in spec_op.get("responses", {}).items():
                if "$ref" in response:
                    response = contract.resolve(response["$ref"])
                codes = _example_codes(response)
                answers += [answer_name(status, code) for code in codes] or [str(status)]
            found[spec_op["operationId"]] = answers
    return found


def _example_codes(response: dict[str, Any]) -> list[str]:
    codes: list[str] = []
    for media in response.get("content", {}).values():
        for example in (media.get("examples") or {}).values():
            value = example.get("value") if isinstance(example, dict) else None
            error = value.get("error") if isinstance(value, dict) else None
            code = error.get("code") if isinstance(error, dict) else None
            if isinstance(code, str) and code not in codes:
                codes.append(code)
    return codes


def fault_kind(label: str | None) -> str | None:
    """``503; source=header`` -> ``503`` (an ``X-Sandbox-Fault-Injected`` value's kind)."""
    return label.partition(";")[0].strip() if label else None


class Coverage:
    """Counts answers, injected faults and retry-discipline problems per (tenant,
    operation); reports against the contract. Keys:
    ``coverage|<tenant>|<operation>|a|<answer>``, ``...|f|<fault>``, ``...|b|<problem>``."""

    def __init__(self, counters: Counters, contract: Any) -> None:
        self._counters = counters
        self.documented = documented_answers(contract)

    def keys(
        self,
        tenant: str | None,
        operation_id: str,
        status: int,
        error_code: str | None,
        fault_label: str | None,
        latency_ms: int | None,
    ) -> list[str]:
        """The counters one answer adds to (a list, so a caller can fold them into one
        store call with other bookkeeping)."""
        base = f"{PREFIX}{tenant or NO_TENANT}|{operation_id}|"
        if fault_label is None and not latency_ms:  # nearly every request
            return [f"{base}a|{status} {error_code}" if error_code else f"{base}a|{status}"]
        kind = fault_kind(fault_label)
        keys = []
        # A dropped connection or a cut body was never the documented answer it stood in for.
        if kind not in NOT_ANSWERS:
            keys.append(f"{base}a|{answer_name(status, error_code)}")
        if kind is not None:
            keys.append(f"{base}f|{kind}")
        if latency_ms:
            keys.append(f"{base}f|{LATENCY}")
        return keys

    def count_behaviour(self, tenant: str, operation_id: str, kind: str) -> None:
        """One retry-discipline problem (``sandbox.behaviour``) of this operation."""
        self._counters.incr(f"{PREFIX}{tenant}|{operation_id}|b|{kind}")

    def reset(self, tenant: str | None = None) -> None:
        self._counters.delete(PREFIX if tenant is None else f"{PREFIX}{tenant}|")

    def report(self, tenant: str | None = None, operations: Iterable[str] | None = None) -> dict:
        """Per operation: calls, each documented answer's count, undocumented answers
        served, faults injected; the operations never called; the share served."""
        prefix = PREFIX if tenant is None else f"{PREFIX}{tenant}|"
        selected = list(operations) if operations else list(self.documented)
        ops = {
            op: {
                "calls": 0,
                "answers": dict.fromkeys(self.documented.get(op, []), 0),
                "undocumented": {},
                "faults": dict.fromkeys([*FAULTS, LATENCY], 0),
                "behaviour": dict.fromkeys(BEHAVIOUR_KINDS, 0),
            }
            for op in selected
        }
        for key, value in self._counters.counts(prefix).items():
            _, _, operation_id, kind, name = key.split("|", 4)
            found = ops.get(operation_id)
            if found is None:
                continue
            if kind == "b":
                found["behaviour"][name] = found["behaviour"].get(name, 0) + value
                continue
            if kind == "f":
                found["faults"][name] = found["faults"].get(name, 0) + value
                if name in NOT_ANSWERS:
                    found["calls"] += value
                continue
            found["calls"] += value
            bucket = "answers" if name in found["answers"] else "undocumented"
            found[bucket][name] = found[bucket].get(name, 0) + value
        return summarise(ops, tenant)


def summarise(ops: dict[str, dict[str, Any]], tenant: str | None = None) -> dict[str, Any]:
    """The report's totals over ``ops`` (also used by the kit to merge several reports)."""
    documented = served = behaviour = 0
    for found in ops.values():
        behaviour += sum(found.get("behaviour", {}).values())
        answers = found["answers"]
        found["served"] = sum(1 for n in answers.values() if n)
        found["documented"] = len(answers)
        documented += found["documented"]
        served += found["served"]
    return {
        "tenant": tenant,
        "documented_answers": documented,
        "served_answers": served,
        "percent": round(100 * served / documented, 1) if documented else 100.0,
        # Retry-discipline problems (GET /_sandbox/violations has each, with its requests).
        "behaviour_problems": behaviour,
        "never_called": [op for op, found in ops.items() if not found["calls"]],
        "operations": ops,
    }
