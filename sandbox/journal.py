"""The request journal: what each request was, what it got, and whether it kept the contract.

A client author reads it (``GET /_sandbox/requests``) to see what their client sent, and
``GET /_sandbox/violations`` to see exactly where it left the contract. Entries live in
the store (a bounded ring), so every worker of a shared store writes to one journal.
Pure Python: the Flask hook that fills entries lives in ``sandbox.app``.
"""

from __future__ import annotations

import itertools
import os
from datetime import datetime
from typing import Any

from sandbox.clock import parse_timestamp
from sandbox.errors import ApiError, StoreUnavailable

# Statuses that mean the *client* broke the contract (as opposed to runtime conditions
# like an unknown customer, a read-only key or a rate limit).
CLIENT_VIOLATION_CODES = {
    "MALFORMED_JSON",
    "UNSUPPORTED_MEDIA_TYPE",
    "PAYLOAD_TOO_LARGE",
    "VALIDATION_ERROR",
    "ENDPOINT_NOT_FOUND",
    "METHOD_NOT_ALLOWED",
}
# The request's journal entry, left in the WSGI environ for the access log.
ENTRY_KEY = "sandbox.journal_entry"


def verdict(
    error: ApiError | None,
    warnings: list[dict[str, str]],
    key_sent: bool,
    fault_injected: str | None,
) -> tuple[str, list[dict[str, str]]]:
    """("ok" | "warning" | "violation", the problems behind it)."""
    if error is not None and fault_injected is None:
        if error.code == "INVALID_API_KEY" and not key_sent:
            return "violation", [{"path": "header:X-API-Key", "message": error.message}]
        if error.code in CLIENT_VIOLATION_CODES:
            listed = (error.details or {}).get("errors")
            return "violation", listed or [{"path": "", "message": error.message}]
    if warnings:
        return "warning", warnings
    return "ok", []


def sides(
    outcome: str, problems: list[dict[str, Any]], call: Any
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """A proxied exchange's verdict: each problem tagged with the side that broke the
    contract ("request": the client; "response": the upstream), and each side's verdict.
    ``call.request_problems`` are those of a request forwarded despite them."""
    asked = call.request_problems
    request_verdict, request = ("violation", asked) if asked else (outcome, problems)
    answered = call.response_problems or []
    response_verdict = "violation" if answered else "ok"
    tagged = [{**p, "side": "request"} for p in request]
    tagged += [{**p, "side": "response"} for p in answered]
    overall = "violation" if "violation" in (request_verdict, response_verdict) else outcome
    fields = {
        "source": call.source,
        "request_verdict": request_verdict,
        "response_verdict": response_verdict,
        "fallback": call.fallback,
    }
    return overall, tagged, fields


class Journal:
    """Appends entries with a per-process unique id; reads filter by tenant and time."""

    def __init__(self, store: Any, size: int) -> None:
        self._store = store
        self.size = size
        self._ids = itertools.count(1)

    def new_id(self) -> str:
        # The pid keeps ids unique across worker processes sharing one store (read at
        # record time: workers are forked after the journal is built).
        return f"{os.getpid()}-{next(self._ids)}"

    def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The entry as recorded, with its id (``entry``'s own, from :meth:`new_id`, or a
        new one)."""
        if "id" not in entry:
            entry = {"id": self.new_id(), **entry}
        try:
            self._store.journal_append(entry, self.size)
        except StoreUnavailable:
            # Written after the answer is made (often the outage's own 503), which must
            # still be sent; the outage is logged once by the store, not per entry.
            pass
        return entry

    def entries(
        self,
        *,
        tenant: str | None = None,
        since: datetime | None = None,
        violations_only: bool = False,
        side: str | None = None,
    ) -> list[dict[str, Any]]:
        """``side`` ("request" | "response"): only entries that side broke; an entry
        of ``serve`` has one side, the request."""
        found = []
        for entry in self._store.journal():
            if tenant is not None and entry.get("tenant") != tenant:
                continue
            if since is not None and parse_timestamp(entry["time"]) < since:
                continue
            if violations_only and entry["verdict"] != "violation":
                continue
            if side is not None:
                judged = entry.get(f"{side}_verdict")
                if judged is None:  # not proxied: every violation is the client's
                    judged = entry["verdict"] if side == "request" else "ok"
                if judged != "violation":
                    continue
            found.append(entry)
        return found
