"""CORS on /api/: preflights, the headers on every kind of answer, --cors-origins modes.

The browser itself (a page on a second origin calling the sandbox) is in
tests/test_docs_browser.py; these check the headers a browser decides on.
"""

from __future__ import annotations

import json

import pytest
import requests

from sandbox.app import create_app
from sandbox.config import ConfigError, Settings
from sandbox.cors import ALLOWED_REQUEST_HEADERS, EXPOSED_RESPONSE_HEADERS, parse_origins
from tests.conftest import DEFAULT_KEY, serve_must_refuse

PAGE = "http://localhost:3000"  # a front-end dev server: another origin than the sandbox
ANALYZE = "/api/intelligence/analyze"
BODY = {"customer_id": "c1", "context": {}}


def preflight(client, path: str, method: str = "POST", origin: str = PAGE):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type,x-api-key",
        },
    )


def listed(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",")}


def concrete(path: str) -> str:
    return path.replace("{industry}", "retail")


def test_preflight_on_every_contract_path_answers_204_with_its_methods(client, contract):
    methods_by_path: dict[str, set[str]] = {}
    for op in contract.operations.values():
        methods_by_path.setdefault(op.path, set()).add(op.method)
    for path, methods in methods_by_path.items():
        for method in methods:
            response = preflight(client, concrete(path), method)
            assert response.status_code == 204, (path, response.get_data(as_text=True))
            assert response.get_data() == b""
            headers = response.headers
            assert headers["Access-Control-Allow-Origin"] == "*"
            assert listed(headers["Access-Control-Allow-Methods"]) == {m.lower() for m in methods}
            allowed = listed(headers["Access-Control-Allow-Headers"])
            assert {"x-api-key", "content-type", "x-sandbox-fault", "x-sandbox-latency"} <= allowed
            assert int(headers["Access-Control-Max-Age"]) > 0
            assert "Vary" not in headers  # the same answer for every origin


def test_preflight_for_an_unknown_api_path_lets_the_404_through(client):
    response = preflight(client, "/api/intelligence/nope")
    assert response.status_code == 204
    assert listed(response.headers["Access-Control-Allow-Methods"]) == {"get", "post"}
    answer = client.post(
        "/api/intelligence/nope", json=BODY, headers={"Origin": PAGE, "X-API-Key": DEFAULT_KEY}
    )
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == "ENDPOINT_NOT_FOUND"
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_preflights_need_no_key_count_nothing_and_are_not_journaled():
    client = create_app(seed=7, rate_limit="3/min").test_client()
    for _ in range(10):
        assert preflight(client, ANALYZE).status_code == 204
    assert client.get("/_sandbox/requests").get_json()["requests"] == []
    answer = client.post(ANALYZE, json=BODY, headers={"Origin": PAGE, "X-API-Key": DEFAULT_KEY})
    assert answer.status_code == 200
    assert answer.headers["X-RateLimit-Remaining"] == "2"
    journal = client.get("/_sandbox/requests").get_json()["requests"]
    assert [(entry["method"], entry["status"]) for entry in journal] == [("POST", 200)]
    assert client.get("/_sandbox/violations").get_json()["count"] == 0


ANSWERS = {
    # name: (method, path, headers beyond Origin, body, expected status)
    "ok": ("POST", ANALYZE, {"X-API-Key": DEFAULT_KEY}, BODY, 200),
    "ok_get": ("GET", "/api/insights/benchmarks/retail", {"X-API-Key": DEFAULT_KEY}, None, 200),
    "no_key": ("POST", ANALYZE, {}, BODY, 401),
    "invalid_body": ("POST", ANALYZE, {"X-API-Key": DEFAULT_KEY}, {"context": {}}, 422),
    "rate_limited": ("POST", ANALYZE, {"X-API-Key": "qpk_test_ratelimited"}, BODY, 429),
    "injected": (
        "POST",
        ANALYZE,
        {"X-API-Key": DEFAULT_KEY, "X-Sandbox-Fault": "503"},
        BODY,
        503,
    ),
    "unknown_path": ("GET", "/api/nope", {"X-API-Key": DEFAULT_KEY}, None, 404),
    "wrong_method": ("GET", ANALYZE, {"X-API-Key": DEFAULT_KEY}, None, 405),
}


@pytest.mark.parametrize("name", ANSWERS)
def test_every_kind_of_api_answer_is_readable_by_the_page(client, name):
    method, path, headers, body, status = ANSWERS[name]
    response = client.open(path, method=method, json=body, headers={"Origin": PAGE, **headers})
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    exposed = listed(response.headers["Access-Control-Expose-Headers"])
    assert {name.lower() for name in EXPOSED_RESPONSE_HEADERS} <= exposed
    # Every sandbox header this answer carries is one the page can read.
    own = {
        header.lower()
        for header, _ in response.headers
        if header.lower().startswith(("x-", "retry-", "allow"))
        and not header.lower().startswith("access-control-")
    }
    assert own <= exposed, own - exposed


def test_exposed_headers_cover_everything_the_sandbox_adds(client):
    exposed = {name.lower() for name in EXPOSED_RESPONSE_HEADERS}
    slow = client.post(
        ANALYZE,
        json=BODY,
        headers={"Origin": PAGE, "X-API-Key": DEFAULT_KEY, "X-Sandbox-Latency": "1"},
    )
    limited = client.post(
        ANALYZE, json=BODY, headers={"Origin": PAGE, "X-API-Key": "qpk_test_ratelimited"}
    )
    seen = {
        header.lower()
        for response in (slow, limited)
        for header, _ in response.headers
        if header.lower().startswith(("x-", "retry-"))
    }
    assert {"x-sandbox-latency-injected", "x-sandbox-fault-injected", "retry-after"} <= seen
    assert seen <= exposed, seen - exposed
    assert {"x-sandbox-fault", "x-sandbox-latency"} <= {h.lower() for h in ALLOWED_REQUEST_HEADERS}


def test_requests_without_origin_and_paths_outside_api_get_no_cors_headers(client):
    plain = client.post(ANALYZE, json=BODY, headers={"X-API-Key": DEFAULT_KEY})
    assert plain.status_code == 200
    health = client.get("/_sandbox/health", headers={"Origin": PAGE})
    docs_preflight = preflight(client, "/_sandbox/reset")
    for response in (plain, health, docs_preflight):
        assert not any(h.lower().startswith("access-control-") for h, _ in response.headers)


def test_a_list_echoes_listed_origins_only_and_varies_on_origin():
    client = create_app(
        seed=7, cors_origins="http://localhost:3000, https://app.example"
    ).test_client()
    for origin in ("http://localhost:3000", "https://app.example"):
        answer = client.post(
            ANALYZE, json=BODY, headers={"Origin": origin, "X-API-Key": DEFAULT_KEY}
        )
        assert answer.headers["Access-Control-Allow-Origin"] == origin
        assert answer.headers["Vary"] == "Origin"
        assert "x-ratelimit-remaining" in listed(answer.headers["Access-Control-Expose-Headers"])
        passed = preflight(client, ANALYZE, origin=origin)
        assert passed.status_code == 204
        assert passed.headers["Access-Control-Allow-Origin"] == origin
        assert passed.headers["Access-Control-Allow-Methods"] == "POST"
        assert passed.headers["Vary"] == "Origin"

    stranger = "http://localhost:4000"
    refused = preflight(client, ANALYZE, origin=stranger)
    assert refused.status_code == 204
    assert refused.headers["Vary"] == "Origin"
    assert not any(h.lower().startswith("access-control-") for h, _ in refused.headers)
    answer = client.post(ANALYZE, json=BODY, headers={"Origin": stranger, "X-API-Key": DEFAULT_KEY})
    assert answer.status_code == 200  # the server answers; the browser hides it from the page
    assert "Access-Control-Allow-Origin" not in answer.headers
    # A cache must not hand an answer without the header to a listed origin.
    no_origin = client.post(ANALYZE, json=BODY, headers={"X-API-Key": DEFAULT_KEY})
    assert no_origin.headers["Vary"] == "Origin"


def test_off_adds_nothing_and_options_answers_as_flask_does():
    on = create_app(seed=7)
    off = create_app(seed=7, cors_origins="off")
    assert type(off.wsgi_app.app).__name__ == "FastPath"  # not even wrapped
    client = off.test_client()
    answer = client.post(ANALYZE, json=BODY, headers={"Origin": PAGE, "X-API-Key": DEFAULT_KEY})
    assert answer.status_code == 200
    assert not any(h.lower().startswith("access-control-") for h, _ in answer.headers)
    options = preflight(client, ANALYZE)
    assert options.status_code == 200
    assert not any(h.lower().startswith("access-control-") for h, _ in options.headers)
    # A plain OPTIONS (no preflight headers) is Flask's, CORS on or off.
    plain = on.test_client().options(ANALYZE)
    assert (plain.status_code, plain.headers["Allow"]) == (200, options.headers["Allow"])


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("*", "*"),
        (" OFF ", "off"),
        ("HTTP://LocalHost:3000/", "http://localhost:3000"),
        ("http://a.test, https://b.test:8443,http://a.test", "http://a.test,https://b.test:8443"),
        (
            "http://a.test:80,https://b.test:443,http://[::1]:3000",
            "http://a.test,https://b.test,http://[::1]:3000",
        ),
    ],
)
def test_origins_are_normalised_as_browsers_send_them(raw, parsed):
    assert parse_origins(raw) == parsed
    assert Settings.from_sources({"QUIMBI_SANDBOX_CORS_ORIGINS": raw}).cors_origins == parsed


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "localhost:3000",
        "http://a.test/app",
        "http://a.test,*",
        "ftp://a.test",
        "a,,b",
        "http://a b.test",
    ],
)
def test_a_bad_origin_list_is_refused_with_the_reason(raw):
    with pytest.raises(ConfigError, match="is not an origin like http://localhost:3000"):
        Settings.from_sources(overrides={"cors_origins": raw})


@pytest.mark.slow
def test_cli_refuses_a_bad_origin():
    serve_must_refuse("--cors-origins", "localhost:3000", says="--cors-origins='localhost:3000'")


def test_the_real_server_answers_preflights_and_413s_with_cors(server):
    response = requests.options(
        server.url + ANALYZE,
        headers={
            "Origin": PAGE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-api-key",
        },
        timeout=10,
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Methods"] == "POST"
    assert response.content == b""
    too_large = requests.post(
        server.url + ANALYZE,
        data=json.dumps({"customer_id": "c1", "pad": "x" * (2 * 1024 * 1024)}),
        headers={"Origin": PAGE, "X-API-Key": DEFAULT_KEY, "Content-Type": "application/json"},
        timeout=10,
    )
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert too_large.headers["Access-Control-Allow-Origin"] == "*"
    ok = server.post(ANALYZE, BODY, headers={"Origin": PAGE})
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == "*"
    assert "X-RateLimit-Remaining" in ok.headers["Access-Control-Expose-Headers"]
