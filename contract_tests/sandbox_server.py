"""The sandbox in-process on a free loopback port, with a handle on its control API.

This is what the ``quimbi_sandbox`` pytest fixture yields to integrators: ``.url`` and
``.api_key`` to point their client at, and ``.fault()``, ``.respond_with()``,
``.reset()``, ``.requests()``, ``.assert_no_violations()`` and ``.coverage()`` over the
sandbox's documented ``/_sandbox`` control endpoints (faults: POST /_sandbox/faults,
DELETE /_sandbox/faults/<id>; state: POST /_sandbox/reset; journal: GET
/_sandbox/requests and GET /_sandbox/violations; coverage: GET /_sandbox/coverage). The
server is werkzeug's threaded WSGI server: no subprocess, so it starts in a blink and
works wherever the test runs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

DEFAULT_KEY = "qpk_test_sandbox"
# Real rate-limit bookkeeping (headers count down), but a limit no test suite reaches: a
# test of 429 handling asks for one (the qpk_test_ratelimited key, or a fault).
KIT_RATE_LIMIT = "100000/min,1000000/hour"
SECOND_TENANT_KEY = "qpk_test_acme"


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: the sandbox's own journal records requests."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class SandboxServer:
    def __init__(
        self,
        app: Any = None,
        api_key: str = DEFAULT_KEY,
        host: str = "127.0.0.1",
        *,
        access_log: bool = False,
        **settings: Any,
    ) -> None:
        """``access_log=True`` prints `quimbi-sandbox serve`'s access lines on sys.stdout
        (pytest shows them with a failing test's output); off by default, as the journal
        (``requests()``, ``assert_no_violations()``) is the record a test reads."""
        if app is None:
            from sandbox.app import create_app

            app = create_app(**{"rate_limit": KIT_RATE_LIMIT, **settings})
        self.app = app
        self.access_log = access_log
        self.api_key = api_key
        self.host = host  # a loopback address (127.0.0.2 too: any 127.x works on Linux)
        self.second_api_key = SECOND_TENANT_KEY
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.http = requests.Session()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not running (use start() or a with block)")
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> SandboxServer:
        served = self.app
        if self.access_log:
            from sandbox.accesslog import AccessLog, AccessLogged

            sandbox = getattr(self.app, "extensions", {}).get("quimbi")
            log_format = sandbox.settings.log_format if sandbox is not None else "text"
            served = AccessLogged(self.app, AccessLog(log_format))
        self._server = make_server(
            self.host, 0, served, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="quimbi-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None
        self.http.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # The control API.

    def _control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, self.url + "/_sandbox" + path, timeout=10, **kwargs)
        if response.status_code >= 300:
            raise RuntimeError(
                f"{method} /_sandbox{path} answered {response.status_code}: {response.text[:300]}"
            )
        return response.json() if response.content else None

    @contextmanager
    def fault(self, **rule: Any) -> Iterator[dict[str, Any]]:
        """Install a fault rule (the /_sandbox/faults rule format) for the with block."""
        answer = self._control("POST", "/faults", json=rule)
        created = (answer or {}).get("rules", [{}])[0]
        rule_id = created.get("id")
        if rule_id is None:
            raise RuntimeError(f"POST /_sandbox/faults returned no rule id: {answer!r}")
        try:
            yield created
        finally:
            self._control("DELETE", f"/faults/{rule_id}")

    @contextmanager
    def respond_with(
        self, answer: Any, *, times: int | None = None, **match: str
    ) -> Iterator[dict[str, Any]]:
        """For the with block, answer the matching ``/api/`` requests (``match``: the
        rule fields method, path, customer_id...; none: every one) with exactly
        ``answer`` (a ``contract_tests.client.Answer``, or {status, headers, body})
        instead of the persona's; ``times`` limits how many."""
        given = answer.as_dict() if hasattr(answer, "as_dict") else dict(answer)
        rule: dict[str, Any] = {"respond": given}
        if match:
            rule["match"] = match
        if times is not None:
            rule["times"] = times
        with self.fault(**rule) as created:
            yield created

    def reset(self, tenant: str | None = None) -> None:
        self._control("POST", "/reset", params={"tenant": tenant} if tenant else None)

    def requests(self, **filters: str) -> list[dict[str, Any]]:
        """The journal: the last requests the sandbox served, newest last."""
        return _entries(self._control("GET", "/requests", params=filters or None))

    def violations(self, **filters: str) -> list[dict[str, Any]]:
        return _entries(self._control("GET", "/violations", params=filters or None))

    def coverage(self, **filters: str) -> dict[str, Any]:
        """Which documented answers each operation served (``GET /_sandbox/coverage``)."""
        return self._control("GET", "/coverage", params=filters or None)

    def assert_no_violations(self, **filters: str) -> None:
        """Fail with every contract violation the client committed, field by field."""
        found = self.violations(**filters)
        if found:
            raise AssertionError(
                f"{len(found)} request(s) broke the Quimbi contract:\n"
                + "\n".join(format_violation(v) for v in found)
            )


def _entries(payload: Any) -> list[dict[str, Any]]:
    # Both journal endpoints answer {"count": N, "requests": [entry, ...]}.
    if isinstance(payload, dict):
        payload = payload.get("requests", [])
    return list(payload or [])


def format_violation(entry: dict[str, Any]) -> str:
    head = (
        f"  {entry.get('method', '?')} {entry.get('path', '?')} -> {entry.get('status', '?')}"
        f" {entry.get('error_code') or ''}"
    ).rstrip()
    problems = next(
        (entry[k] for k in ("problems", "violations", "errors") if isinstance(entry.get(k), list)),
        [],
    )
    lines = [head]
    for problem in problems:
        if isinstance(problem, dict):
            where = problem.get("path", problem.get("pointer", ""))
            lines.append(f"      {where or '(body)'}: {problem.get('message', problem)}")
        else:
            lines.append(f"      {problem}")
    return "\n".join(lines)
