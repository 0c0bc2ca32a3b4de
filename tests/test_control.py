"""The /_sandbox control API: test clock, journal, violations, admin token, --no-control."""

from __future__ import annotations

import pytest

from sandbox.app import create_app

KEY = {"X-API-Key": "qpk_test_sandbox"}
ANALYZE = "/api/intelligence/analyze"


def metrics(client, customer_id: str) -> dict:
    response = client.post(ANALYZE, json={"customer_id": customer_id}, headers=KEY)
    return response.get_json()["behavioral_metrics"]


def test_frozen_clock_and_advance_age_everyone():
    client = create_app(now="2024-01-15T10:30:00Z").test_client()
    assert client.get("/_sandbox/clock").get_json() == {
        "now": "2024-01-15T10:30:00Z",
        "frozen": True,
        "anchor": "2024-01-15T10:30:00Z",
        "elapsed_days": 0,
    }
    client.post(
        "/api/data/ingest_orders",
        headers=KEY,
        json={
            "source": "s",
            "orders": [
                {
                    "customer_id": "c-clock",
                    "order_id": "o1",
                    "order_date": "2024-01-10T09:00:00Z",
                    "total_price": 20.0,
                }
            ],
        },
    )
    generated, ingested = metrics(client, "test_customer_high_ltv"), metrics(client, "c-clock")
    assert generated["days_since_last_purchase"] == 15
    assert ingested["days_since_last_purchase"] == 5
    moved = client.post("/_sandbox/clock", json={"advance": "30d"}).get_json()
    assert moved["now"] == "2024-02-14T10:30:00Z" and moved["elapsed_days"] == 30
    assert metrics(client, "test_customer_high_ltv")["days_since_last_purchase"] == 45
    assert metrics(client, "test_customer_high_ltv")["customer_tenure_days"] == 486
    assert metrics(client, "c-clock")["days_since_last_purchase"] == 35
    client.post("/_sandbox/clock", json={"now": "2024-01-25T00:00:00Z"})
    assert metrics(client, "c-clock")["days_since_last_purchase"] == 15
    client.post("/_sandbox/clock", json={"reset": True})
    assert client.get("/_sandbox/clock").get_json()["now"] == "2024-01-15T10:30:00Z"


def test_real_time_clock_keeps_generated_customers_still(client):
    state = client.get("/_sandbox/clock").get_json()
    assert state["frozen"] is False and state["elapsed_days"] == 0
    assert metrics(client, "test_customer_high_ltv")["days_since_last_purchase"] == 15
    client.post("/_sandbox/clock", json={"advance": "7d"})
    assert metrics(client, "test_customer_high_ltv")["days_since_last_purchase"] == 22


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"advance": "soon"},
        {"now": "tomorrow"},
        {"now": "2024-01-01T00:00:00Z", "advance": "1d"},
        {"reset": False},
    ],
)
def test_bad_clock_bodies_are_422(client, body):
    response = client.post("/_sandbox/clock", json=body)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "VALIDATION_ERROR"


def test_journal_records_requests_with_redacted_keys(client):
    client.post(ANALYZE, json={"customer_id": "c1"}, headers=KEY)
    client.get("/api/insights/benchmarks/retail", headers={"X-API-Key": "qpk_test_acme"})
    entries = client.get("/_sandbox/requests").get_json()["requests"]
    first, second = entries[-2:]
    assert first["method"] == "POST" and first["path"] == ANALYZE
    assert first["operation_id"] == "analyzeCustomer" and first["status"] == 200
    assert first["tenant"] == "linda_quilting" and first["api_key"] == "qpk_test…"
    assert first["verdict"] == "ok" and first["duration_ms"] >= 0
    assert second["tenant"] == "acme_outdoor"
    only_acme = client.get("/_sandbox/requests?tenant=acme_outdoor").get_json()
    assert only_acme["count"] == 1
    assert "qpk_test_sandbox" not in str(entries)


def test_journal_is_bounded():
    client = create_app(journal_size=3).test_client()
    for i in range(5):
        client.post(ANALYZE, json={"customer_id": f"c{i}"}, headers=KEY)
    entries = client.get("/_sandbox/requests").get_json()["requests"]
    assert [e["status"] for e in entries] == [200, 200, 200] and len(entries) == 3


def test_violations_name_the_fields_a_client_got_wrong(client):
    client.post(ANALYZE, json={"customer_id": "fine"}, headers=KEY)
    client.post(ANALYZE, json={"customer_id": 42, "context": {"orders": "none"}}, headers=KEY)
    client.post(ANALYZE, json={"customer_id": "c"})  # no key at all
    client.post("/api/intelligence/analyze", data="x", headers=KEY)  # wrong content type
    client.post(ANALYZE, json={"customer_id": "test_customer_not_found"}, headers=KEY)
    violations = client.get("/_sandbox/violations").get_json()["requests"]
    assert [v["status"] for v in violations] == [422, 401, 415]
    problems = {p["path"] for p in violations[0]["problems"]}
    assert problems == {"/customer_id", "/context/orders"}
    assert violations[1]["problems"][0]["path"] == "header:X-API-Key"


def test_unknown_fields_are_warnings_by_default_and_422_when_strict(client):
    body = {"customer_id": "c1", "contxt": {}}
    assert client.post(ANALYZE, json=body, headers=KEY).status_code == 200
    entry = client.get("/_sandbox/requests").get_json()["requests"][-1]
    assert entry["verdict"] == "warning"
    assert "contxt" in entry["problems"][0]["message"]
    assert client.get("/_sandbox/violations").get_json()["count"] == 0
    strict = create_app(strict=True).test_client()
    response = strict.post(ANALYZE, json=body, headers=KEY)
    assert response.status_code == 422
    assert "contxt" in response.get_json()["error"]["details"]["errors"][0]["message"]


def test_since_filter_and_its_validation(client):
    client.post(ANALYZE, json={"customer_id": "c1"}, headers=KEY)
    later = client.get("/_sandbox/requests?since=2999-01-01T00:00:00Z").get_json()
    assert later["count"] == 0
    assert client.get("/_sandbox/requests?since=2000-01-01T00:00:00Z").get_json()["count"] == 1
    bad = client.get("/_sandbox/requests?since=yesterday")
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "VALIDATION_ERROR"


def test_admin_token_guards_everything_but_health():
    client = create_app(admin_token="s3cret").test_client()
    assert client.get("/_sandbox/health").status_code == 200
    for method, path in [
        ("GET", "/_sandbox/requests"),
        ("POST", "/_sandbox/reset"),
        ("GET", "/_sandbox/state"),
        ("GET", "/_sandbox/clock"),
    ]:
        denied = client.open(path, method=method)
        assert denied.status_code == 401
        assert denied.get_json()["error"]["code"] == "INVALID_ADMIN_TOKEN"
        wrong = client.open(path, method=method, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        allowed = client.open(path, method=method, headers={"Authorization": "Bearer s3cret"})
        assert allowed.status_code == 200


def test_no_control_removes_the_control_api():
    client = create_app(control=False).test_client()
    assert client.get("/_sandbox/health").status_code == 200
    response = client.post("/_sandbox/reset")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "ENDPOINT_NOT_FOUND"


def test_reset_restores_flaky_customers_and_rate_limit_windows_per_tenant():
    client = create_app(rate_limit="3/min", rate_limit_clock=lambda: 1000.0).test_client()
    flaky = {"customer_id": "test_customer_flaky"}
    acme = {"X-API-Key": "qpk_test_acme"}
    assert [client.post(ANALYZE, json=flaky, headers=KEY).status_code for _ in range(4)] == [
        503,
        503,
        200,
        429,
    ]
    assert client.post(ANALYZE, json=flaky, headers=acme).status_code == 503
    client.post("/_sandbox/reset?tenant=linda_quilting")
    assert client.post(ANALYZE, json=flaky, headers=KEY).status_code == 503
    assert client.post(ANALYZE, json=flaky, headers=acme).status_code == 503
    assert client.post(ANALYZE, json=flaky, headers=acme).status_code == 200


def test_reset_all_reloads_the_fault_rules_from_the_faults_file(tmp_path):
    rules = tmp_path / "faults.yaml"
    rules.write_text("- {id: boot, match: {path: /api/insights/*}, fault: 500, times: 1}\n")
    client = create_app(faults=rules).test_client()
    client.post("/_sandbox/faults", json={"id": "runtime", "fault": 503})
    benchmarks = "/api/insights/benchmarks/retail"
    assert client.get(benchmarks, headers=KEY).status_code == 500
    client.post("/_sandbox/reset")
    assert [r["id"] for r in client.get("/_sandbox/faults").get_json()["rules"]] == ["boot"]
    assert client.get(benchmarks, headers=KEY).status_code == 500
    assert client.get(benchmarks, headers=KEY).status_code == 200
