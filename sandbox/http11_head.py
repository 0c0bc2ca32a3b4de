"""The head of an answer, as the bytes ``sandbox.http11`` writes: the status line, the
app's headers in its order and spelling (hop-by-hop ones dropped), then what the server
owes every answer: ``Content-Length`` (none where no body may follow), a ``Content-Type``
when a body has none (RFC 9110 8.3's default, as aiohttp added), ``Date`` (unless the
answer has one: the proxy passes the upstream's), and ``Connection`` when it differs
from the version's default.
"""

from __future__ import annotations

import time
from http import HTTPStatus

# Hop-by-hop, or the server's to set from the body it is given.
_DROPPED = frozenset({"content-length", "transfer-encoding", "connection"})
_DROPPED_HEAD = _DROPPED - {"content-length"}  # HEAD keeps the size a GET would get
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def has_body(status: int, head_only: bool) -> bool:
    return not head_only and status >= 200 and status not in (204, 304)


def answer_head(
    version: str,
    head_only: bool,
    status: int,
    headers: list[tuple[str, str]],
    length: int,
    close: bool,
) -> bytes:
    """``length``: the body's; ``head_only``: the answer to a HEAD, whose headers keep the
    app's ``Content-Length`` (the size a GET would get). ValueError for a header that
    holds a line break: sent, it would split the answer in two."""
    dropped = _DROPPED_HEAD if head_only else _DROPPED
    lines = [_status_line(version, status)]
    dated = sized = typed = False
    for name, value in headers:
        low = name.lower()
        if low in dropped:
            continue
        if low == "date":
            dated = True
        elif low == "content-type":
            typed = True
        elif low == "content-length":
            sized = True
        lines.append(f"{name}: {value}")
    bodiless = status in (204, 304) or status < 200
    if not bodiless and not sized:
        lines.append(f"Content-Length: {length}")
    if length and not typed and not bodiless and not head_only:
        lines.append("Content-Type: application/octet-stream")
    if not dated:
        lines.append("Date: " + _http_date())
    if close:
        if version == "1.1":
            lines.append("Connection: close")
    elif version == "1.0":
        lines.append("Connection: keep-alive")
    text = "\r\n".join(lines) + "\r\n\r\n"
    breaks = len(lines) + 1
    if text.count("\n") != breaks or text.count("\r") != breaks:
        raise ValueError("a header name or value holds a line break")
    try:
        return text.encode("latin-1")  # WSGI's headers are latin-1; the proxy's too
    except UnicodeEncodeError:  # not WSGI's: as sent by a client (UTF-8, surrogateescape)
        return text.encode("utf-8", "surrogateescape")


_status_lines: dict[tuple[str, int], str] = {}


def _status_line(version: str, status: int) -> str:
    line = _status_lines.get((version, status))
    if line is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        line = _status_lines[(version, status)] = f"HTTP/{version} {status} {phrase}"
    return line


_date_second = -1
_date_text = ""


def _http_date() -> str:
    """The ``Date`` header's value (RFC 9110 5.6.7), made once a second."""
    global _date_second, _date_text
    now = int(time.time())
    if now != _date_second:
        t = time.gmtime(now)
        _date_text = (
            f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
        )
        _date_second = now
    return _date_text
