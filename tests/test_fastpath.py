"""The operations' fast path answers exactly as the same request through Flask would."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import Client

from sandbox.api.fastpath import FastPath
from sandbox.app import create_app
from tests.conftest import DEFAULT_KEY
from tests.test_api_http import request_examples

SETTINGS = {"seed": 4, "now": "2025-05-01T12:00:00Z", "rate_limit": "1000/min,10000/hour"}
JSON = "application/json"
# Journal fields that differ between any two requests, however alike.
UNSTABLE = {"id", "time", "duration_ms"}


def _fast_path(app) -> FastPath:
    layer = app.wsgi_app
    while not isinstance(layer, FastPath):
        layer = layer.app  # the middleware in front of it (network faults, CORS)
    return layer


def twins():
    """Two identical sandboxes; the second has its fast path switched off."""
    fast, slow = create_app(**SETTINGS), create_app(**SETTINGS)
    _fast_path(slow)._match = lambda environ: None
    return fast, slow


def ask(app, method, path, body=None, headers=None, raw=None, content_type=JSON):
    headers = {"X-API-Key": DEFAULT_KEY, **(headers or {})}
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    response = Client(app).open(
        path, method=method, data=data, headers=headers, content_type=content_type
    )
    kept = sorted((k, v) for k, v in response.headers.items() if k != "Date")
    return response.status_code, kept, response.get_data()


def journal(app) -> list[dict]:
    entries = app.extensions["quimbi"].journal.entries()
    return [
        {k: stable(v) if k == "problems" else v for k, v in entry.items() if k not in UNSTABLE}
        for entry in entries
    ]


def stable(problems: tuple) -> list:
    # A retry-discipline problem names the requests involved by id and time.
    return [p["rule"] if p.get("kind") == "behaviour" else p for p in problems]


def test_every_operation_is_on_the_fast_path(contract):
    fast = _fast_path(create_app())
    on_it = {op.operation_id for op in fast.exact.values()}
    on_it |= {route[-1].operation_id for route in fast.tails}
    assert on_it == set(contract.operations)


def cases(contract):
    for operation_id, name, body in request_examples(contract):
        op = contract.operation(operation_id)
        path = op.path.replace("{industry}", "retail")
        yield f"{operation_id}:{name}", (op.method, path, body, {}, None, JSON)
    analyze = "/api/intelligence/analyze"
    body = {"customer_id": "test_customer_high_ltv"}
    yield "no key", ("POST", analyze, body, {"X-API-Key": ""}, None, JSON)
    yield "wrong key", ("POST", analyze, body, {"X-API-Key": "nope"}, None, JSON)
    yield (
        "read-only key writes",
        (
            "POST",
            "/api/data/ingest_orders",
            {"source": "s", "orders": []},
            {"X-API-Key": "qpk_test_readonly"},
            None,
            JSON,
        ),
    )
    yield "not JSON", ("POST", analyze, None, {}, "{nope", JSON)
    yield "empty body", ("POST", analyze, None, {}, "", JSON)
    yield "text/plain", ("POST", analyze, body, {}, None, "text/plain")
    yield "json with charset", ("POST", analyze, body, {}, None, "application/json; charset=utf-8")
    yield "invalid body", ("POST", analyze, {"customer_id": 7}, {}, None, JSON)
    yield "unknown field", ("POST", analyze, {**body, "contxt": {}}, {}, None, JSON)
    yield "injected 503", ("POST", analyze, body, {"X-Sandbox-Fault": "503"}, None, JSON)
    yield "malformed", ("POST", analyze, body, {"X-Sandbox-Fault": "malformed"}, None, JSON)
    yield "bad fault header", ("POST", analyze, body, {"X-Sandbox-Fault": "boom"}, None, JSON)
    yield "latency header", ("POST", analyze, body, {"X-Sandbox-Latency": "1"}, None, JSON)
    yield (
        "magic error customer",
        (
            "POST",
            analyze,
            {"customer_id": "test_customer_error_500"},
            {},
            None,
            JSON,
        ),
    )
    yield (
        "flaky customer",
        ("POST", analyze, {"customer_id": "test_customer_flaky"}, {}, None, JSON),
    )
    benchmarks = "/api/insights/benchmarks/"
    yield "unknown industry", ("GET", benchmarks + "knitting", None, {}, None, JSON)
    yield "industry with a slash", ("GET", benchmarks + "retail/extra", None, {}, None, JSON)
    yield "industry in UTF-8", ("GET", benchmarks + "caf%C3%A9", None, {}, None, JSON)
    yield "trailing slash", ("POST", analyze + "/", body, {}, None, JSON)
    yield "wrong method", ("GET", analyze, None, {}, None, JSON)
    yield "HEAD", ("HEAD", "/api/insights/my-position", None, {}, None, JSON)


LEFT_TO_FLASK = {"trailing slash", "wrong method", "HEAD"}


def test_same_answers_and_journal_as_through_flask(contract):
    fast, slow = twins()
    path = _fast_path(fast)
    flask_app = path.app
    reached_flask = []

    def counting(environ, start_response):
        reached_flask.append(environ["PATH_INFO"])
        return flask_app(environ, start_response)

    path.app = counting
    names = []
    for name, (method, url, body, headers, raw, content_type) in cases(contract):
        names.append(name)
        answers = [ask(app, method, url, body, headers, raw, content_type) for app in (fast, slow)]
        assert answers[0] == answers[1], name
        # Twice: the flaky customer's second call, and answers served from the cache.
        again = [ask(app, method, url, body, headers, raw, content_type) for app in (fast, slow)]
        assert again[0] == again[1], name
    assert len(reached_flask) == 2 * len(LEFT_TO_FLASK)
    assert journal(fast) == journal(slow)
    assert len(journal(fast)) == 2 * len(names)


@pytest.mark.parametrize("path", ["/api/insights/benchmarks/", "/api/insights/benchmarks//x"])
def test_paths_the_routes_do_not_match_are_left_to_flask(path):
    fast = _fast_path(create_app())
    assert fast._match({"REQUEST_METHOD": "GET", "PATH_INFO": path}) is None


def test_operation_requests_leave_nothing_for_the_cycle_collector():
    """Per-request reference cycles are what made collections frequent (p99 pauses)."""
    import gc
    import io

    app = create_app(**SETTINGS)

    def call(body: bytes) -> int:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/api/intelligence/analyze",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": JSON,
            "HTTP_X_API_KEY": DEFAULT_KEY,
        }
        seen = []
        b"".join(app(environ, lambda status, headers, exc_info=None: seen.append(status)))
        return int(seen[0].split()[0])

    assert call(b'{"customer_id": "test_customer_high_ltv"}') == 200  # caches filled
    gc.collect()
    gc.disable()
    try:
        for body in (b'{"customer_id": "test_customer_high_ltv"}', b'{"customer_id": "c9"}'):
            assert call(body) == 200
        assert call(b'{"customer_id": 7}') == 422
        assert call(b"{nope") == 400
        assert gc.collect() == 0
    finally:
        gc.enable()
