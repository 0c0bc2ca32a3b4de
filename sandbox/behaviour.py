"""Retry discipline: does a client retry the way the contract says, over time?

The contract: retry ``500`` and ``503`` with exponential backoff (1 s, 2 s, 4 s),
honouring ``Retry-After``; never retry another 4xx; after a ``429`` wait ``Retry-After``.
The journal judges one request at a time; this module judges a request against the
answers the *same* request got before: per tenant and fingerprint (method, path,
canonical JSON body). Each fingerprint's failed answers since its last success are a
short list in the store's ``Counters`` (one ``exchange`` per request, which also bumps
the coverage counters), so every worker of a shared store judges the same history.

Not judged: a repeat after a 2xx (an intentional new request), after a dropped or cut
answer (the contract says nothing of them), or after the tenant ingested data (the
404 it got may no longer hold). Pure Python: ``sandbox.api.pipeline.finish`` calls
:meth:`Behaviour.observe`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sandbox.clock import iso
from sandbox.store.counters import Counters

BACKOFF_SECONDS = (1.0, 2.0, 4.0)
MAX_RETRIES = len(BACKOFF_SECONDS)
RETRYABLE = (500, 503)
# Answers a client reads in its own time: the sandbox stamps both ends on its side of
# the wire, so a compliant wait always measures longer; this only absorbs clock jitter.
TOLERANCE_SECONDS = 0.05
# How long a failed answer is remembered: a retry loop resends within seconds, a resend
# minutes later is another test's question. A longer Retry-After is remembered past its end.
MEMORY_SECONDS = 300.0
PREFIX = "behaviour|"
# The kinds of problem, as the coverage report counts them.
RESENT_4XX = "resent_4xx"
EARLY_429_RETRY = "early_429_retry"
FAST_5XX_RETRY = "fast_5xx_retry"
TOO_MANY_RETRIES = "too_many_retries"
KINDS = (RESENT_4XX, EARLY_429_RETRY, FAST_5XX_RETRY, TOO_MANY_RETRIES)


# Built once: json.dumps with any argument builds a new encoder per call.
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def fingerprint(method: str, path: str, body: Any, raw: bytes) -> str:
    """A stable digest of what the request asks (the same in every worker process)."""
    if body is not None:
        raw = _canonical(body).encode()
    digest = hashlib.blake2b(raw, digest_size=12)
    digest.update(f"\0{method} {path}".encode())
    return digest.hexdigest()


def judge(history: list[dict[str, Any]], sent_at: float) -> tuple[str, str] | None:
    """(kind, why) when a request sent at ``sent_at`` should not have been sent, given
    the failed answers its fingerprint got since its last success (oldest first)."""
    last = history[-1]
    status, waited = last["status"], sent_at - last["t"]
    retry_after = last.get("retry_after") or 0
    answer = f"{status} {last.get('error_code') or ''}".rstrip()
    if status in RETRYABLE:
        retries = 0
        for event in reversed(history):
            if event["status"] not in RETRYABLE:
                break
            retries += 1
        if retries > MAX_RETRIES:
            return TOO_MANY_RETRIES, (
                f"retry {retries} of a request answered {answer}: the contract allows"
                f" {MAX_RETRIES} retries (backoff 1 s, 2 s, 4 s), then give up"
            )
        needed = max(BACKOFF_SECONDS[retries - 1], retry_after)
        if waited + TOLERANCE_SECONDS < needed:
            return FAST_5XX_RETRY, (
                f"retry {retries} sent {waited:.2f} s after a {answer}; the documented"
                f" backoff asks for {needed:g} s"
                + (f" (Retry-After: {retry_after:g})" if retry_after else "")
            )
        return None
    if status == 429:
        if waited + TOLERANCE_SECONDS < retry_after:
            return EARLY_429_RETRY, (
                f"retried {waited:.2f} s after a {answer}; its Retry-After asked for"
                f" {retry_after:g} s"
            )
        return None
    if 400 <= status < 500:
        return RESENT_4XX, (
            f"sent again {waited:.2f} s after a {answer}: the contract says never to"
            " retry a 4xx other than 429 (change the request instead)"
        )
    return None


class Behaviour:
    """Keeps each fingerprint's failed answers and judges the next request against them."""

    def __init__(self, counters: Counters, now: Callable[[], float]) -> None:
        self._counters = counters
        self._now = now

    def idle(self, tenant: str, status: int, wrote: bool, bump: list[str]) -> bool:
        """The cheap case, done: a success with no failed answer kept anywhere, so
        nothing to judge it against and nothing to keep (no fingerprint to compute).
        True when it was that case and ``bump``'s counters are counted."""
        if status >= 400 or self._counters.lists_pending(tenant):
            return False
        counters = self._counters
        if wrote:  # read by the next judgement, maybe in another process: now
            for key in [*bump, f"{PREFIX}{tenant}|writes"]:
                counters.incr(key)
        else:
            counters.bump(bump)
        return True

    def observe(
        self,
        *,
        tenant: str,
        entry_id: str,
        method: str,
        path: str,
        body: Any,
        raw: Callable[[], bytes],
        status: int,
        error_code: str | None,
        retry_after: float | None,
        held_seconds: float,
        answered: bool,
        wrote: bool,
        bump: list[str],
    ) -> dict[str, Any] | None:
        """The behaviour problem of this request (a journal problem), or None. Adds 1
        to each counter in ``bump`` in the same store call (ask :meth:`idle` first).
        ``answered``: the client got this status (no dropped connection, no cut body);
        ``wrote``: an ingestion succeeded (the tenant's data changed)."""
        counters = self._counters
        failed = answered and status >= 400
        writes_key = f"{PREFIX}{tenant}|writes"
        now = self._now()
        key = f"{PREFIX}{tenant}|{fingerprint(method, path, body, raw())}"
        counts = [(name, 1) for name in bump]
        counts.append((writes_key, 1 if wrote else 0))
        values, old = counters.exchange(
            key,
            json.dumps(
                {
                    "id": entry_id,
                    "time": iso(datetime.fromtimestamp(now, UTC)),
                    "t": now + held_seconds,  # when the client had the answer
                    "status": status,
                    "error_code": error_code,
                    "retry_after": retry_after,
                }
            )
            if failed
            else None,
            MAX_RETRIES + 2,
            max(MEMORY_SECONDS, (retry_after or 0) + 60),
            counts,
            scope=tenant,
        )
        # Only answers given since the tenant's last ingestion count: the 404 before it
        # may no longer hold, so asking again is a new question.
        writes = str(values[-1] - (1 if wrote else 0))
        history = []
        for tagged in old:
            tag, _, doc = tagged.partition(" ")
            if tag == writes:
                history.append(json.loads(doc))
        if not history:
            return None
        found = judge(history, now)
        if found is None:
            return None
        kind, why = found
        return {
            "path": "behaviour",
            "message": f"{kind}: {why}. Requests: "
            + ", ".join(f"{e['id']} at {e['time']} -> {e['status']}" for e in history)
            + f", then {entry_id} at {iso(datetime.fromtimestamp(now, UTC))}",
            "kind": "behaviour",
            "rule": kind,
            "requests": [
                *(
                    {k: e[k] for k in ("id", "time", "status", "error_code") if k in e}
                    for e in history
                ),
                {"id": entry_id, "time": iso(datetime.fromtimestamp(now, UTC))},
            ],
        }

    def reset(self, tenant: str | None = None) -> None:
        self._counters.delete(PREFIX if tenant is None else f"{PREFIX}{tenant}|")
