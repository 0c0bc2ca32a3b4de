"""What the console shows: the start-up banner, and one access line per request.

A developer whose app sends an off-contract request should see it as it happens, not
only by asking ``/_sandbox/violations``. So every request (operations, control API,
docs, unknown paths, 405s, network faults) gets one line on stdout: time, method, path,
status, duration, tenant, the injected fault, and for a violation the first problem
with its JSON pointer. ``--log-format json`` writes the journal entry's fields instead,
one object per line (the key redacted as in the journal).

The server calls :meth:`AccessLog.request` once per request, after the answer is ready
(or the connection dropped): ``sandbox.server`` for ``quimbi-sandbox serve``, or
:class:`AccessLogged` around the app under any other WSGI server. What the pipeline
learned comes from the WSGI environ: the journal entry ``pipeline.finish`` left under
:data:`sandbox.journal.ENTRY_KEY`, else (control API, docs) the pipeline's ``Call``.

Each line is one ``write`` on the file descriptor: nothing to flush, so a line shows at
once, and ``--workers N`` processes sharing stdout never interleave within a line (a
pipe write up to 4 KiB is atomic). No Flask here.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import IO, Any

from sandbox.auth import redact
from sandbox.clock import iso
from sandbox.config import Settings
from sandbox.journal import ENTRY_KEY

# pipeline.CALL_KEY; not imported, because sandbox.api.pipeline imports Flask.
CALL_KEY = "sandbox.call"
FORMATS = ("text", "json")
_MESSAGE_CHARS = 160  # a problem's message in a text line; the journal keeps it whole
# One encoder: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

log = logging.getLogger("sandbox.accesslog")

_RESET = "\x1b[0m"
_DIM = "\x1b[2m"
_STATUS_COLOURS = {2: "\x1b[32m", 3: "\x1b[36m", 4: "\x1b[33m", 5: "\x1b[31m"}
_FAULT_COLOUR = "\x1b[35m"
_PROBLEM_COLOURS = {"violation": "\x1b[31m", "warning": "\x1b[33m"}


def wants_colour(stream: IO[str], environ: Mapping[str, str] = os.environ) -> bool:
    """Colour for a terminal only, and never when NO_COLOR is set (no-color.org)."""
    if environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _decoded(path: str) -> str:
    """PEP 3333 carries the path's bytes as latin-1; shown as the UTF-8 they spell."""
    try:
        return path.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:  # already text (a server that decoded it)
        return path


def _printable(text: str) -> str:
    # A path or message could carry escape sequences meant for the terminal.
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


class AccessLog:
    """Formats one line per request and writes it with one write call."""

    def __init__(
        self,
        log_format: str = "text",
        stream: IO[str] | None = None,
        colour: bool | None = None,
    ) -> None:
        """``stream``: written with one ``os.write`` per line when it has a descriptor
        (stdout under ``serve``); None: whatever ``sys.stdout`` is at each line, through
        its ``write`` (an in-process server under a test runner that swaps it)."""
        if log_format not in FORMATS:
            raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
        self.json = log_format == "json"
        shown_on = stream if stream is not None else sys.stdout
        self.colour = (wants_colour(shown_on) if colour is None else colour) and not self.json
        self._stream = stream
        self._fd: int | None = None
        if stream is not None:
            try:
                stream.flush()  # what was printed before keeps its place in the output
                self._fd = stream.fileno()
            except (AttributeError, ValueError, OSError):
                pass  # not a real file: written through the stream
        self._second = -1
        self._clock = ""
        self._broken = False

    def request(self, environ: Mapping[str, Any], status: int | None, seconds: float) -> None:
        """Log one request; ``status`` None: the connection was dropped (a network fault)."""
        if self._broken:
            return
        entry = environ.get(ENTRY_KEY)
        if entry is None:
            entry = _unjournaled(environ, status)
        if self.json:
            line = self._json(entry, status, seconds)
        else:
            line = self._text(environ, entry, status, seconds)
        self._write(line)

    def _text(
        self,
        environ: Mapping[str, Any],
        entry: Mapping[str, Any],
        status: int | None,
        seconds: float,
    ) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:  # strftime once a second, not once a request
            self._second = second
            self._clock = time.strftime("%H:%M:%S", time.localtime(second))
        clock = f"{self._clock}.{int((now - second) * 1000):03d}"
        path = environ.get("PATH_INFO", "")
        if not path.isascii():
            path = _decoded(path)
        query = environ.get("QUERY_STRING")
        if query:
            path = f"{path}?{query}"
        path = _printable(path)
        method = environ.get("REQUEST_METHOD", "-")
        status_text = "---" if status is None else str(status)
        tenant = entry.get("tenant")
        ms = seconds * 1000
        tail = f"({ms:.1f} ms, {tenant})\n" if tenant else f"({ms:.1f} ms)\n"
        code = entry.get("error_code")
        fault = entry.get("fault_injected")
        problems = entry.get("problems")
        case = entry.get("case")
        if not (self.colour or code or fault or problems or case):  # most lines: one format
            return f"{clock} {method} {path} {status_text} {tail}"
        if self.colour:
            clock = f"{_DIM}{clock}{_RESET}"
            tint = _STATUS_COLOURS.get((status or 500) // 100, "")
            status_text = f"{tint}{status_text}{_RESET}"
        parts = [clock, method, path, status_text]
        if code:
            parts.append(code)
        if fault:
            parts.append(
                f"{_FAULT_COLOUR}fault {fault}{_RESET}" if self.colour else f"fault {fault}"
            )
        if case:
            parts.append(f"case {case}")
        if problems:
            parts.append(self._problem(problems, entry.get("verdict")))
        parts.append(tail)
        return " ".join(parts)

    def _problem(self, problems: Iterable[Mapping[str, str]], verdict: str | None) -> str:
        problems = list(problems)
        first = problems[0]
        message = first.get("message", "")
        if len(message) > _MESSAGE_CHARS:
            message = message[: _MESSAGE_CHARS - 1] + "…"
        pointer = first.get("path", "")
        text = f"{pointer}: {message}" if pointer else message
        side = first.get("side")  # proxy mode: who broke it, the client or the upstream
        if side is not None:
            text = f"{side} {text}"
        if verdict == "warning":
            text = f"warning {text}"
        if len(problems) > 1:
            text += f" (+{len(problems) - 1} more)"
        text = _printable(text)
        if self.colour:
            return f"{_PROBLEM_COLOURS.get(verdict or '', '')}{text}{_RESET}"
        return text

    @staticmethod
    def _json(entry: Mapping[str, Any], status: int | None, seconds: float) -> str:
        document = {**entry, "status": status, "duration_ms": round(seconds * 1000, 2)}
        return _ENCODER.encode(document) + "\n"

    def _write(self, line: str) -> None:
        try:
            if self._fd is None:
                stream = self._stream if self._stream is not None else sys.stdout
                stream.write(line)
                stream.flush()
                return
            data = line.encode("utf-8", "backslashreplace")
            while data:  # a blocking write returns short only on a signal or a full disk
                data = data[os.write(self._fd, data) :]
        except BlockingIOError:
            pass  # a non-blocking stdout that is full: this line is lost, not the server
        except (OSError, ValueError) as exc:
            # The reader went away (EPIPE) or the disk is full: stop, and say so once.
            self._broken = True
            log.warning("access log stopped: cannot write to stdout (%s)", exc)


def _unjournaled(environ: Mapping[str, Any], status: int | None) -> dict[str, Any]:
    """The journal's fields for a request the journal does not keep (control API, docs,
    or one that failed before the pipeline finished it)."""
    call = environ.get(CALL_KEY)
    error = getattr(call, "error", None)
    api_key = getattr(call, "api_key", None)
    return {
        "time": iso(datetime.now(UTC)),
        "method": environ.get("REQUEST_METHOD"),
        "path": environ.get("PATH_INFO"),
        "operation_id": getattr(call, "operation_id", None),
        "tenant": api_key.tenant if api_key is not None else None,
        "api_key": redact(environ.get("HTTP_X_API_KEY")),
        "status": status,
        "error_code": error.code if error is not None else None,
        "duration_ms": None,
        "fault_injected": getattr(call, "fault_injected", None),
        "case": getattr(call, "case", None),
        "verdict": None,
        "problems": (),
    }


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class AccessLogged:
    """WSGI middleware: the access log under a server other than the sandbox's own
    (werkzeug's, in the contract kit's in-process sandbox). Outermost, so the held
    answers and dropped connections ``sandbox.netfaults`` carries out are in the time."""

    def __init__(self, app: WsgiApp, access_log: AccessLog) -> None:
        self.app = app
        self.access_log = access_log

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        started = time.perf_counter()
        seen: list[int] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen[:] = [int(status.split(" ", 1)[0])]
            return start_response(status, headers, exc_info)

        try:
            result = self.app(environ, start)
        except ConnectionError:  # a network fault dropped the connection
            self.access_log.request(environ, None, time.perf_counter() - started)
            raise
        self.access_log.request(environ, seen[0] if seen else None, time.perf_counter() - started)
        return result


def banner(settings: Settings, version: str, url: str, default_key: str) -> str:
    """Where to go next, printed once at start-up (on stderr, like the server's logs)."""
    lines = [
        f"Quimbi Sandbox {version} on {url} "
        f"(seed {settings.seed}, customers {settings.customers}, "
        f"{settings.workers} worker{'s' if settings.workers > 1 else ''})",
        f"  API docs     {url}/docs",
        f"  API key      X-API-Key: {default_key} (the README lists the others; --keys adds)",
    ]
    if settings.upstream is not None:
        swapped = ", its key swapped in" if settings.upstream_api_key else ""
        lines.append(
            f"  Proxy        /api/ -> {settings.upstream} (timeout "
            f"{settings.upstream_timeout:g} s{swapped}); /_sandbox/violations?side=response"
        )
    if settings.control:
        guard = " (Authorization: Bearer <admin token>)" if settings.admin_token else ""
        lines.append(f"  Control API  {url}/_sandbox/ (requests, violations, faults, reset){guard}")
    else:
        lines.append(f"  Control API  off (--no-control): only {url}/_sandbox/health")
    if settings.access_log:
        lines.append(
            f"  Access log   stdout, one {settings.log_format} line per request "
            "(--no-access-log: none)"
        )
    else:
        lines.append("  Access log   off (--access-log: one line per request on stdout)")
    return "\n".join(lines)
