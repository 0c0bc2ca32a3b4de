"""Properties of the customer model over random ids: every rule, for any customer."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.app import create_app
from sandbox.personas import rules
from sandbox.personas.model import CustomerModel, load_magic_customers
from sandbox.resources import fixtures_dir

customer_ids = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40
).filter(lambda s: not s.startswith("test_customer_"))
tenants = st.sampled_from(["linda_quilting", "acme_outdoor", "t3"])
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def model() -> CustomerModel:
    return CustomerModel(0, load_magic_customers(fixtures_dir() / "customers.yaml"))


@pytest.fixture(scope="module")
def segment_vocabulary(contract) -> dict[str, list[str]]:
    schema = contract.document["components"]["schemas"]
    segments = schema["Segments"]["properties"]
    return {axis: schema[ref["$ref"].rsplit("/", 1)[1]]["enum"] for axis, ref in segments.items()}


@FAST
@given(customer_id=customer_ids, tenant=tenants)
def test_metrics_come_from_the_history(model, customer_id, tenant):
    history = model.history(tenant, customer_id)
    analysis = model.analysis(history)
    metrics = analysis["behavioral_metrics"]
    totals = [o.total_cents for o in history.orders]
    assert metrics["lifetime_value"] == round(sum(totals) / 100, 2)
    assert metrics["total_orders"] == len(history.orders)
    expected_aov = round(sum(totals) / len(totals)) / 100 if totals else 0
    assert metrics["avg_order_value"] == round(expected_aov, 2)
    assert 0 <= metrics["days_since_last_purchase"] <= metrics["customer_tenure_days"]
    if history.orders:
        assert metrics["days_since_last_purchase"] == min(o.days_ago for o in history.orders)
    else:
        assert metrics["days_since_last_purchase"] == metrics["customer_tenure_days"]
    for order in history.orders:
        assert order.total_cents > 0 and order.days_ago <= metrics["customer_tenure_days"]


@FAST
@given(customer_id=customer_ids, tenant=tenants)
def test_segments_archetype_and_levels_follow_the_rules(
    model, segment_vocabulary, customer_id, tenant
):
    history = model.history(tenant, customer_id)
    analysis = model.analysis(history)
    segments = analysis["archetype"]["segments"]
    assert set(segments) == set(segment_vocabulary)
    for axis, value in segments.items():
        assert value in segment_vocabulary[axis], (axis, value)
    archetype = analysis["archetype"]["id"]
    if segments["purchase_value"] == "none":
        assert archetype == f"arch_{segments['shopping_maturity']}_prospect"
    else:
        assert archetype == f"arch_{segments['purchase_value']}_{segments['price_sensitivity']}"
    churn = analysis["predictions"]["churn_risk"]
    assert 0 <= churn <= 1
    assert analysis["predictions"]["churn_risk_level"] == rules.churn_risk_level(churn)
    assert analysis["communication_guidance"]
    if analysis["behavioral_metrics"]["total_orders"] == 0:
        assert any("New customer" in tip for tip in analysis["communication_guidance"])
    if segments["return_behavior"] == "frequent_returner":
        assert any("quality" in tip for tip in analysis["communication_guidance"])


@FAST
@given(customer_id=customer_ids, tenant=tenants, horizon=st.integers(1, 35))
def test_intelligence_endpoints_agree(model, customer_id, tenant, horizon):
    history = model.history(tenant, customer_id)
    analysis = model.analysis(history)
    churn = model.churn_prediction(history)
    assert churn["churn_risk_score"] == analysis["predictions"]["churn_risk"]
    assert churn["risk_level"] == analysis["predictions"]["churn_risk_level"]
    factors = {f["factor"]: f["value"] for f in churn["factors"]}
    metrics = analysis["behavioral_metrics"]
    assert factors["days_since_last_purchase"] == metrics["days_since_last_purchase"]
    assert factors["customer_tenure_days"] == metrics["customer_tenure_days"]
    year = model.ltv_forecast(history, 12)
    assert year["forecasted_ltv"] == analysis["predictions"]["ltv_12mo"]
    assert year["current_ltv"] == metrics["lifetime_value"]
    shorter, longer = model.ltv_forecast(history, horizon), model.ltv_forecast(history, horizon + 1)
    # Grows with the horizon; for customers about to churn a month more can add under a cent.
    assert longer["forecasted_ltv"] >= shorter["forecasted_ltv"]
    assert (
        model.ltv_forecast(history, 36)["forecasted_ltv"]
        > model.ltv_forecast(history, 1)["forecasted_ltv"]
    )
    for forecast in (shorter, longer, year):
        interval = forecast["confidence_interval"]
        assert interval["lower"] <= forecast["forecasted_ltv"] <= interval["upper"]
        assert 0 <= interval["confidence_level"] <= 1


def test_level_thresholds_are_the_documented_ones():
    assert [rules.churn_risk_level(x) for x in (0.0, 0.29, 0.3, 0.59, 0.6, 1.0)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]


def test_same_id_in_two_tenants_is_two_customers(model):
    differing = sum(
        model.analysis(model.history("linda_quilting", f"c{i}"))
        != model.analysis(model.history("acme_outdoor", f"c{i}"))
        for i in range(20)
    )
    assert differing >= 18


def test_a_different_seed_gives_different_customers(model):
    other = CustomerModel(1, model.magic)
    differing = sum(
        model.analysis(model.history("t", f"c{i}")) != other.analysis(other.history("t", f"c{i}"))
        for i in range(20)
    )
    assert differing >= 18


def test_random_customers_cover_every_kind(model):
    levels, orders = set(), set()
    for i in range(300):
        analysis = model.analysis(model.history("linda_quilting", f"cust_{i}"))
        levels.add(analysis["predictions"]["churn_risk_level"])
        orders.add(min(analysis["behavioral_metrics"]["total_orders"], 2))
    assert levels == {"low", "medium", "high"}
    assert orders == {0, 1, 2}


def test_history_cache_is_bounded():
    small = CustomerModel(0, {}, cache_size=5)
    for i in range(50):
        small.history("t", f"c{i}")
    assert len(small._cache._items) == 5
    assert small.history("t", "c0") == CustomerModel(0, {}).history("t", "c0")


def test_strict_mode_only_magic_customers_exist():
    client = create_app(customers="strict").test_client()
    headers = {"X-API-Key": "qpk_test_sandbox"}
    random_id = client.post(
        "/api/intelligence/analyze", json={"customer_id": "cust_1"}, headers=headers
    )
    assert random_id.status_code == 404
    assert random_id.get_json()["error"]["details"] == {"customer_id": "cust_1"}
    magic = client.post(
        "/api/intelligence/analyze", json={"customer_id": "test_customer_vip"}, headers=headers
    )
    assert magic.status_code == 200


def test_strict_mode_env_variable(monkeypatch):
    from sandbox.config import Settings

    assert Settings.from_sources({"QUIMBI_SANDBOX_CUSTOMERS": "strict"}).customers == "strict"
