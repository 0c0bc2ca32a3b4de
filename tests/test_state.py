"""Ingestion changes the analysis exactly; tenants are sealed; state resets, exports, imports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.app import create_app

KEY, ACME = {"X-API-Key": "qpk_test_sandbox"}, {"X-API-Key": "qpk_test_acme"}
ANALYZE = "/api/intelligence/analyze"
INGEST = "/api/data/ingest_orders"
INTERACTIONS = "/api/data/ingest_interactions"


def days_ago(days: int) -> str:
    moment = datetime.now(UTC) - timedelta(days=days)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def make_order(customer_id: str, order_id: str, total: float, age: int = 3) -> dict:
    return {
        "customer_id": customer_id,
        "order_id": order_id,
        "order_date": days_ago(age),
        "total_price": total,
        "items": [
            {
                "product_id": "p1",
                "product_name": "Fat Quarter",
                "category": "fabric",
                "quantity": 1,
                "price": total,
            }
        ],
    }


def analyze(client, customer_id: str, headers=KEY) -> dict:
    response = client.post(ANALYZE, json={"customer_id": customer_id}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ingest(client, orders: list[dict], headers=KEY):
    return client.post(INGEST, json={"source": "shopify", "orders": orders}, headers=headers)


money = st.decimals(min_value="0.01", max_value="5000", places=2).map(float)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    totals=st.lists(money, min_size=1, max_size=8),
    customer=st.sampled_from(["test_customer_high_ltv", "test_customer_new", "cust_random_7"]),
    data=st.data(),
)
def test_ingest_then_analyze_is_exact(totals, customer, data):
    client = create_app().test_client()
    before = analyze(client, customer)["behavioral_metrics"]
    token = data.draw(st.uuids()).hex
    orders = [make_order(customer, f"o-{token}-{i}", t, age=1) for i, t in enumerate(totals)]
    response = ingest(client, orders)
    assert response.get_json() == {
        "ingested_count": len(orders),
        "status": "success",
        "customer_profiles_updated": [customer],
    }
    after = analyze(client, customer)["behavioral_metrics"]
    expected_cents = round(before["lifetime_value"] * 100) + sum(round(t * 100) for t in totals)
    assert round(after["lifetime_value"] * 100) == expected_cents
    assert after["total_orders"] == before["total_orders"] + len(totals)
    assert after["days_since_last_purchase"] == min(1, before["days_since_last_purchase"])
    assert ingest(client, orders).get_json()["ingested_count"] == 0
    assert analyze(client, customer)["behavioral_metrics"] == after


def test_predictions_use_the_same_history(client):
    ingest(client, [make_order("test_customer_new", "o-pred-1", 120.0, age=2)])
    analysis = analyze(client, "test_customer_new")
    churn = client.post(
        "/api/intelligence/predict/churn", json={"customer_id": "test_customer_new"}, headers=KEY
    ).get_json()
    ltv = client.post(
        "/api/intelligence/predict/ltv", json={"customer_id": "test_customer_new"}, headers=KEY
    ).get_json()
    assert analysis["behavioral_metrics"]["total_orders"] == 1
    assert analysis["archetype"]["segments"]["purchase_frequency"] == "one_time"
    assert churn["churn_risk_score"] == analysis["predictions"]["churn_risk"]
    assert ltv["current_ltv"] == 120.0
    assert ltv["forecasted_ltv"] == analysis["predictions"]["ltv_12mo"]


def test_one_bad_order_rejects_the_batch_and_names_its_index(client):
    good = make_order("c-batch", "o-batch-1", 10.0)
    bad = make_order("c-batch", "o-batch-2", 10.0)
    bad["total_price"] = "ten"
    response = ingest(client, [good, bad])
    assert response.status_code == 422
    paths = [e["path"] for e in response.get_json()["error"]["details"]["errors"]]
    assert paths == ["/orders/1/total_price"]
    assert ingest(client, [good]).get_json()["ingested_count"] == 1


def test_future_dates_are_accepted_and_count_as_today(client):
    # The contract takes any date-time, so the sandbox must too (the kit found this).
    response = ingest(client, [make_order("c-future", "o-future", 10.0, age=-3)])
    assert response.get_json()["ingested_count"] == 1
    metrics = analyze(client, "c-future")["behavioral_metrics"]
    assert metrics["days_since_last_purchase"] == 0


def test_interactions_reach_churn_factors(client):
    customer = "test_customer_power_buyer"
    before = client.post(
        "/api/intelligence/predict/churn", json={"customer_id": customer}, headers=KEY
    ).get_json()
    tickets = [
        {
            "customer_id": customer,
            "interaction_type": "support_ticket",
            "timestamp": days_ago(2),
            "channel": "email",
            "metadata": {"ticket_id": f"T-{i}", "resolved": False},
        }
        for i in range(3)
    ]
    response = client.post(
        INTERACTIONS, json={"source": "support_app", "interactions": tickets}, headers=KEY
    )
    assert response.get_json() == {"ingested_count": 3, "status": "success"}
    after = client.post(
        "/api/intelligence/predict/churn", json={"customer_id": customer}, headers=KEY
    ).get_json()
    factor = {f["factor"]: f for f in after["factors"]}["recent_support_tickets"]
    assert factor["value"] == 3 and factor["direction"] == "increases_risk"
    assert after["churn_risk_score"] > before["churn_risk_score"]
    guidance = analyze(client, customer)["communication_guidance"]
    assert any("support" in tip for tip in guidance)


def test_context_is_merged_into_one_analysis_and_not_stored(client):
    body = {
        "customer_id": "test_customer_new",
        "context": {
            "orders": [{"order_id": "ctx-1", "order_date": days_ago(1), "total_price": 42.5}],
            "interactions": [
                {"type": "support_ticket", "timestamp": days_ago(1), "channel": "chat"}
            ],
        },
    }
    merged = client.post(ANALYZE, json=body, headers=KEY).get_json()
    assert merged["behavioral_metrics"]["lifetime_value"] == 42.5
    assert analyze(client, "test_customer_new")["behavioral_metrics"]["lifetime_value"] == 0


def test_tenants_are_sealed_and_reset_per_tenant(client):
    ingest(client, [make_order("shared-id", "o-t1", 99.0)])
    ingest(client, [make_order("shared-id", "o-t2", 11.0)], headers=ACME)
    linda = analyze(client, "shared-id")
    acme = analyze(client, "shared-id", ACME)
    client.post("/_sandbox/reset?tenant=linda_quilting")
    assert analyze(client, "shared-id") != linda
    assert analyze(client, "shared-id", ACME) == acme


def test_unknown_customers_come_into_existence_in_strict_mode():
    client = create_app(customers="strict").test_client()
    assert client.post(ANALYZE, json={"customer_id": "new-c"}, headers=KEY).status_code == 404
    ingest(client, [make_order("new-c", "o-strict", 25.0)])
    metrics = analyze(client, "new-c")["behavioral_metrics"]
    assert (metrics["total_orders"], metrics["lifetime_value"]) == (1, 25.0)
    assert client.post(ANALYZE, json={"customer_id": "new-c"}, headers=ACME).status_code == 404


def test_export_reset_import_gives_identical_analysis(client):
    ingest(client, [make_order("c-exp", "o-exp-1", 10.0), make_order("c-exp", "o-exp-2", 20.5)])
    ingest(client, [make_order("c-exp", "o-exp-3", 7.0)], headers=ACME)
    before = analyze(client, "c-exp"), analyze(client, "c-exp", ACME)
    exported = client.get("/_sandbox/state").get_json()
    assert set(exported["tenants"]) == {"linda_quilting", "acme_outdoor"}
    client.post("/_sandbox/reset")
    assert analyze(client, "c-exp") != before[0]
    response = client.put("/_sandbox/state", json=exported)
    assert response.get_json()["imported"] == {"tenants": 2, "orders": 3, "interactions": 0}
    assert (analyze(client, "c-exp"), analyze(client, "c-exp", ACME)) == before
    assert client.get("/_sandbox/state").get_json() == exported


def test_state_import_is_validated(client):
    response = client.put("/_sandbox/state", json={"tenants": {"t": {"orders": [{}]}}})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "VALIDATION_ERROR"


def test_state_file_preloads_at_start(tmp_path, client):
    ingest(client, [make_order("c-file", "o-file", 33.0)])
    path = tmp_path / "state.json"
    import json

    path.write_text(json.dumps(client.get("/_sandbox/state").get_json()))
    preloaded = create_app(seed=7, state=path).test_client()
    assert analyze(preloaded, "c-file") == analyze(client, "c-file")


def test_bad_state_file_is_a_config_error(tmp_path):
    from sandbox.config import ConfigError

    path = tmp_path / "state.json"
    path.write_text('{"tenants": 3}')
    with pytest.raises(ConfigError, match="not a sandbox state document"):
        create_app(state=path)
