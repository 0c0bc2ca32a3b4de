"""Magic customers have the character they exist for, on every endpoint."""

from __future__ import annotations

import hashlib
import json

import pytest

from sandbox.personas.catalog import catalogue
from sandbox.personas.drawing import generate_history
from sandbox.personas.history import Traits
from sandbox.personas.model import load_magic_customers

CUSTOMER_PATHS = [
    "/api/intelligence/analyze",
    "/api/intelligence/predict/churn",
    "/api/intelligence/predict/ltv",
]


@pytest.fixture
def analyze(client, auth):
    def call(customer_id: str) -> dict:
        response = client.post(CUSTOMER_PATHS[0], json={"customer_id": customer_id}, headers=auth)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return call


def test_vip(analyze):
    vip = analyze("test_customer_vip")
    assert vip["behavioral_metrics"]["lifetime_value"] >= 10000
    assert vip["predictions"]["churn_risk"] < 0.1
    assert vip["archetype"]["segments"]["purchase_value"] == "premium"


def test_at_risk_vip_is_the_guides_priority_boost_case(analyze):
    at_risk = analyze("test_customer_at_risk_vip")
    assert at_risk["behavioral_metrics"]["lifetime_value"] > 1000
    assert at_risk["predictions"]["churn_risk"] > 0.7


def test_churned(analyze):
    churned = analyze("test_customer_churned")
    assert churned["behavioral_metrics"]["days_since_last_purchase"] > 365
    assert churned["archetype"]["segments"]["shopping_cadence"] == "lapsed"
    assert churned["predictions"]["churn_risk_level"] == "high"


@pytest.mark.parametrize(
    ("customer_id", "axis", "value"),
    [
        ("test_customer_deal_hunter", "price_sensitivity", "deal_hunter"),
        ("test_customer_frequent_returner", "return_behavior", "frequent_returner"),
        ("test_customer_one_time_buyer", "purchase_frequency", "one_time"),
        ("test_customer_one_time_buyer", "repurchase_behavior", "one_time"),
        ("test_customer_power_buyer", "purchase_frequency", "power_buyer"),
        ("test_customer_new", "shopping_maturity", "new"),
        ("test_customer_high_ltv", "purchase_value", "premium"),
    ],
)
def test_segment_pins(analyze, customer_id, axis, value):
    assert analyze(customer_id)["archetype"]["segments"][axis] == value


def test_documented_figures_of_the_reference_customer(analyze):
    profile = analyze("test_customer_high_ltv")
    assert profile["behavioral_metrics"] == {
        "lifetime_value": 892.5,
        "total_orders": 12,
        "avg_order_value": 74.38,
        "days_since_last_purchase": 15,
        "customer_tenure_days": 456,
    }
    assert profile["predictions"] == {
        "churn_risk": 0.18,
        "churn_risk_level": "low",
        "ltv_12mo": 450.0,
    }


def test_a_written_out_order_log_is_the_history():
    traits = Traits.from_mapping(
        {
            "orders": 3,
            "lifetime_value": 60.50,
            "recency_days": 5,
            "tenure_days": 100,
            "order_log": [[5, 10.25], [90, 30.00], [40, 20.25]],
        }
    )
    history = generate_history(0, "t", "c", traits)
    assert [(o.days_ago, o.total_cents) for o in history.orders] == [
        (90, 3000),
        (40, 2025),
        (5, 1025),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"orders": 4}, "orders 3"),
        ({"lifetime_value": 60.51}, "lifetime_value 60.5"),
        ({"recency_days": 6}, "recency_days 5"),
        ({"tenure_days": 80}, "predates tenure_days"),
    ],
)
def test_an_order_log_that_contradicts_its_traits_is_refused(change, message):
    traits = {
        "orders": 3,
        "lifetime_value": 60.50,
        "recency_days": 5,
        "tenure_days": 100,
        "order_log": [[5, 10.25], [90, 30.00], [40, 20.25]],
    }
    with pytest.raises(ValueError, match=message):
        Traits.from_mapping({**traits, **change})


def test_one_time_buyer_has_exactly_one_order(analyze):
    assert analyze("test_customer_one_time_buyer")["behavioral_metrics"]["total_orders"] == 1


@pytest.mark.parametrize("path", CUSTOMER_PATHS)
def test_not_found_customer_is_404_on_every_customer_endpoint(client, auth, path):
    response = client.post(path, json={"customer_id": "test_customer_not_found"}, headers=auth)
    assert response.status_code == 404
    assert response.get_json()["error"] == {
        "code": "CUSTOMER_NOT_FOUND",
        "message": "Customer 'test_customer_not_found' not found.",
        "details": {"customer_id": "test_customer_not_found"},
    }


# Faker decides product names; a new Faker release may change them, which would silently
# change every integrator's snapshot. Update this pin (and the golden files) on purpose.
CATALOGUE_SHA256 = "6f50ebf27265c1adb078f75e36079500a063a2722f3572fc495f5f1ec4415759"


def test_faker_output_has_not_drifted():
    names = json.dumps([p.product_name for p in catalogue(0)]).encode()
    digest = hashlib.sha256(names).hexdigest()
    assert digest == CATALOGUE_SHA256, (
        "Faker's output changed (product names differ): check the Faker version pin in "
        "pyproject.toml, then update CATALOGUE_SHA256 and regenerate the golden files."
    )


def test_a_contradicting_fixture_names_the_file_and_customer(tmp_path):
    fixture = tmp_path / "customers.yaml"
    fixture.write_text(
        "customers:\n  c_bad:\n    traits: {orders: 2, lifetime_value: 5.00, recency_days: 1,"
        " tenure_days: 9, order_log: [[1, 5.00]]}\n"
    )
    with pytest.raises(
        ValueError, match=r"customers\.yaml: customer c_bad: order_log gives orders"
    ):
        load_magic_customers(fixture)
