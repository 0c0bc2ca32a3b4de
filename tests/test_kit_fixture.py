"""The quimbi_sandbox fixture as an integrator uses it, including a small example client."""

from __future__ import annotations

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings

from contract_tests.client import Answer, answers


class QuimbiClient:
    """The README's example client: analyze a customer, fall back when the API fails."""

    FALLBACK = {"predictions": {"churn_risk": 0.5, "churn_risk_level": "unknown"}}

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["X-API-Key"] = api_key

    def analyze(self, customer_id: str) -> dict:
        try:
            response = self.session.post(
                f"{self.base_url}/api/intelligence/analyze",
                json={"customer_id": customer_id},
                timeout=5,
            )
        except requests.ConnectionError:
            return {"customer_id": customer_id, **self.FALLBACK}
        if response.status_code in (500, 503):
            return {"customer_id": customer_id, **self.FALLBACK}
        response.raise_for_status()
        return response.json()


def test_client_reads_a_documented_customer(quimbi_sandbox):
    client = QuimbiClient(quimbi_sandbox.url, quimbi_sandbox.api_key)
    profile = client.analyze("test_customer_high_ltv")
    assert profile["behavioral_metrics"]["total_orders"] == 12
    assert profile["predictions"]["churn_risk_level"] == "low"
    quimbi_sandbox.assert_no_violations()


def test_control_api_errors_name_the_endpoint(quimbi_sandbox):
    with pytest.raises(RuntimeError, match=r"/_sandbox/no_such_thing answered 404"):
        quimbi_sandbox._control("GET", "/no_such_thing")


def test_fault_injects_and_removes_a_rule(quimbi_sandbox):
    client = QuimbiClient(quimbi_sandbox.url, quimbi_sandbox.api_key)
    rule = {"match": {"path": "/api/intelligence/analyze"}, "fault": 503}
    with quimbi_sandbox.fault(**rule):
        assert client.analyze("test_customer_high_ltv") == {
            "customer_id": "test_customer_high_ltv",
            **QuimbiClient.FALLBACK,
        }
    assert client.analyze("test_customer_high_ltv")["behavioral_metrics"]["total_orders"] == 12


def test_reset_and_journal(quimbi_sandbox):
    QuimbiClient(quimbi_sandbox.url, quimbi_sandbox.api_key).analyze("test_customer_new")
    journal = quimbi_sandbox.requests()
    assert [entry["path"] for entry in journal][-1] == "/api/intelligence/analyze"
    assert quimbi_sandbox.api_key not in str(journal)  # keys are redacted
    requests.post(
        f"{quimbi_sandbox.url}/api/data/ingest_orders",
        headers={"X-API-Key": quimbi_sandbox.api_key},
        json={
            "source": "test",
            "orders": [
                {
                    "customer_id": "test_customer_new",
                    "order_id": "fixture_reset_o1",
                    "order_date": "2024-01-15T10:30:00Z",
                    "total_price": 12.5,
                }
            ],
        },
        timeout=5,
    ).raise_for_status()
    client = QuimbiClient(quimbi_sandbox.url, quimbi_sandbox.api_key)
    assert client.analyze("test_customer_new")["behavioral_metrics"]["total_orders"] == 1
    quimbi_sandbox.reset()
    assert client.analyze("test_customer_new")["behavioral_metrics"]["total_orders"] == 0


def test_assert_no_violations_names_the_fields(quimbi_sandbox):
    requests.post(
        f"{quimbi_sandbox.url}/api/intelligence/predict/ltv",
        headers={"X-API-Key": quimbi_sandbox.api_key},
        json={"customer_id": "test_customer_new", "horizon_months": "twelve"},
        timeout=5,
    )
    with pytest.raises(AssertionError, match="/horizon_months"):
        quimbi_sandbox.assert_no_violations()


# Generated answers: the README's client survives every documented answer of analyze.

KIT_SETTINGS = settings(
    max_examples=40,
    # No explain phase: it traces every line the failing example runs (requests,
    # werkzeug, the sandbox), which takes seconds per replay and explains nothing here.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@KIT_SETTINGS
@given(answer=answers("analyzeCustomer"))
def test_client_survives_every_documented_answer(quimbi_sandbox, answer):
    client = QuimbiClient(quimbi_sandbox.url, quimbi_sandbox.api_key)
    with quimbi_sandbox.respond_with(answer, path="/api/intelligence/analyze"):
        try:
            profile = client.analyze("c1")
        except requests.HTTPError as error:  # the client's contract: other errors raise
            assert error.response.status_code == answer.status not in (200, 500, 503)
            return
    assert profile["predictions"]["churn_risk_level"] in {"low", "medium", "high", "unknown"}


class FragileClient(QuimbiClient):
    """The README's fragile variant: it shows the first piece of advice."""

    def first_advice(self, customer_id: str) -> str:
        return self.analyze(customer_id)["communication_guidance"][0]


def test_a_fragile_client_fails_with_the_minimal_answer(quimbi_sandbox):
    tried = []

    @KIT_SETTINGS
    @given(answer=answers("analyzeCustomer", status=200))
    def first_advice_is_shown(answer):
        tried.append(answer)
        client = FragileClient(quimbi_sandbox.url, quimbi_sandbox.api_key)
        with quimbi_sandbox.respond_with(answer):
            assert client.first_advice("c1")

    with pytest.raises((IndexError, AssertionError)):
        first_advice_is_shown()
    minimal = tried[-1]  # Hypothesis replays the shrunk example last
    assert minimal.status == 200
    assert minimal.body["communication_guidance"] == []
    # Shrunk: no extra properties, the smallest values the contract allows.
    assert minimal.body["behavioral_metrics"]["total_orders"] == 0
    assert set(minimal.body) == {
        "customer_id",
        "archetype",
        "behavioral_metrics",
        "predictions",
        "communication_guidance",
    }


def test_respond_with_serves_exactly_that_answer_then_stops(quimbi_sandbox):
    answer = Answer(
        429,
        {"Retry-After": "3", "X-RateLimit-Limit": "1"},
        {"error": {"code": "RATE_LIMIT_EXCEEDED", "message": "ü"}},
    )
    url = f"{quimbi_sandbox.url}/api/intelligence/analyze"
    headers = {"X-API-Key": quimbi_sandbox.api_key}
    with quimbi_sandbox.respond_with(answer, times=1):
        first = requests.post(url, json={"customer_id": "c1"}, headers=headers, timeout=5)
        second = requests.post(url, json={"customer_id": "c1"}, headers=headers, timeout=5)
    assert first.status_code == 429 and first.json() == answer.body
    assert first.headers["Retry-After"] == "3" and first.headers["X-RateLimit-Limit"] == "1"
    assert second.status_code == 200
    after = requests.post(url, json={"customer_id": "c1"}, headers=headers, timeout=5)
    assert "X-Sandbox-Case" not in after.headers
