"""Recordings: every exchange the proxy sees, one JSON line each (``proxy --record``), and
their replay by ``serve --replay``.

A line (format ``quimbi-sandbox-recording/1``, versioned like the state export) holds
the request (method, path, query, headers with every key and ``Authorization``
redacted, body), the answer (status, headers, body), who answered, both verdicts and
the problems, and ``match``: the case's identity, which replay looks up: method, path,
tenant and the body as canonical JSON (keys sorted, no spaces; a body that is not JSON
as its text). Bodies are JSON text when they are UTF-8 (``body``), else base64
(``body_base64``). No Flask.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sandbox.auth import redact

FORMAT = "quimbi-sandbox-recording/1"
REDACTED_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "cookie"})
# Not replayed: the hop's own, the proxy's, and the rate-limit state (the replaying
# sandbox sends its own, as for every answer it gives).
_NOT_REPLAYED = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "date",
        "server",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    }
)
REPLAY_PREFIX = "replay:"  # Counters: how many times each case was replayed


class RecordingError(ValueError):
    """A --replay file the sandbox cannot use; the message says which line and why."""


def canonical_body(raw: bytes) -> str | None:
    """The body as replay compares it: canonical JSON, or the text; None when empty."""
    if not raw.strip():
        return None
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return raw.decode("utf-8", "replace")
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _body(raw: bytes) -> dict[str, str]:
    try:
        return {"body": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_base64": base64.b64encode(raw).decode()}


def _raw(part: Mapping[str, Any]) -> bytes:
    if "body_base64" in part:
        return base64.b64decode(part["body_base64"])
    return str(part.get("body", "")).encode()


def _redacted(headers: Iterable[tuple[str, str]]) -> list[list[str]]:
    kept = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "x-api-key":
            value = redact(value) or ""  # as the journal shows it
        elif lowered in REDACTED_HEADERS:
            value = "[redacted]"
        kept.append([name, value])
    return kept


def exchange_line(
    *,
    method: str,
    path: str,
    query: str,
    tenant: str | None,
    request_headers: Iterable[tuple[str, str]],
    request_body: bytes,
    status: int,
    response_headers: Iterable[tuple[str, str]],
    response_body: bytes,
    entry: Mapping[str, Any],
) -> str:
    record = {
        "format": FORMAT,
        "time": entry.get("time"),
        "match": {
            "method": method,
            "path": path,
            "tenant": tenant,
            "body": canonical_body(request_body),
        },
        "request": {"query": query, "headers": _redacted(request_headers), **_body(request_body)},
        "response": {
            "status": status,
            "headers": _redacted(response_headers),
            **_body(response_body),
        },
        "source": entry.get("source"),
        "request_verdict": entry.get("request_verdict"),
        "response_verdict": entry.get("response_verdict"),
        "problems": list(entry.get("problems", ())),
    }
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


class Recorder:
    """Appends lines to --record FILE; one write each, so workers' lines never interleave."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def write(self, line: str) -> None:
        os.write(self._fd, line.encode())


class Replay:
    """--replay FILE: the recorded answers by case, in the order they were recorded."""

    def __init__(self, path: Path) -> None:
        self.cases: dict[str, list[tuple[int, list[tuple[str, str]], bytes, int]]] = {}
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise RecordingError(f"--replay {path}: cannot read it ({exc})") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if record.get("format") != FORMAT:
                    raise ValueError(f"format is {record.get('format')!r}, not {FORMAT!r}")
                match, response = record["match"], record["response"]
                key = self.key(match["method"], match["path"], match["tenant"], match["body"])
                headers = [
                    (str(n), str(v))
                    for n, v in response["headers"]
                    if str(n).lower() not in _NOT_REPLAYED
                    and not str(n).lower().startswith("x-sandbox-")  # the proxy's own
                ]
                answer = (int(response["status"]), headers, _raw(response), number)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise RecordingError(f"--replay {path}: line {number}: {exc}") from None
            self.cases.setdefault(key, []).append(answer)

    @staticmethod
    def key(method: str, path: str, tenant: str | None, body: str | None) -> str:
        identity = json.dumps([method, path, tenant, body], ensure_ascii=False)
        return hashlib.sha256(identity.encode()).hexdigest()[:32]

    def answer(
        self, counters: Any, method: str, path: str, tenant: str, raw: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes, int] | None:
        """The recorded answer for this case (the tenant's own, else one recorded with a
        key the proxy did not know), the next one each time; the last one repeats."""
        body = canonical_body(raw)
        for who in (tenant, None):
            key = self.key(method, path, who, body)
            answers = self.cases.get(key)
            if answers:
                served = counters.incr(REPLAY_PREFIX + key)
                return answers[min(served, len(answers)) - 1]
        return None
