"""Generated answers over HTTP: the header, rule and server-wide triggers, the case
header and journal entry, rate limits, no caching, and bad header values."""

from __future__ import annotations

import json

import pytest
import requests

from sandbox.app import create_app
from sandbox.config import Settings
from sandbox.generated import AnswerGenerator, CaseId
from sandbox.spec import load_contract
from tests.conftest import DEFAULT_KEY

ANALYZE = "/api/intelligence/analyze"
BODY = {"customer_id": "test_customer_high_ltv", "context": {}}
CONTRACT = load_contract()
GENERATOR = AnswerGenerator(CONTRACT)


def post(client, headers=None, body=BODY):
    return client.post(ANALYZE, json=body, headers={"X-API-Key": DEFAULT_KEY, **(headers or {})})


def assert_is_case(response, case_id: CaseId):
    expected = GENERATOR.case(case_id)
    assert response.headers["X-Sandbox-Case"] == case_id.label()
    assert response.status_code == expected.status
    assert response.get_data() == expected.encoded()
    for name, value in expected.headers.items():
        assert response.headers.get_all(name) == [value]


@pytest.fixture
def client():
    return create_app().test_client()


def test_header_next_case_then_a_given_case_then_a_status(client):
    persona = post(client).get_data()
    assert_is_case(
        post(client, {"X-Sandbox-Response": "generated"}), CaseId(0, "analyzeCustomer", 1)
    )
    assert_is_case(
        post(client, {"X-Sandbox-Response": "generated"}), CaseId(0, "analyzeCustomer", 2)
    )
    for _ in range(2):  # a given case replays, and leaves the sequence alone
        assert_is_case(
            post(client, {"X-Sandbox-Response": "generated; case=17"}),
            CaseId(0, "analyzeCustomer", 17),
        )
    restricted = post(client, {"X-Sandbox-Response": "GENERATED;status=429; case=4"})
    assert_is_case(restricted, CaseId(0, "analyzeCustomer", 4, 429))
    assert int(restricted.headers["Retry-After"]) >= 0
    assert_is_case(
        post(client, {"X-Sandbox-Response": "generated"}), CaseId(0, "analyzeCustomer", 3)
    )
    # Not cached, and the persona's answer is untouched by them.
    assert post(client).get_data() == persona
    assert "X-Sandbox-Case" not in post(client).headers


def test_journal_records_the_case_and_the_seed_changes_cases():
    app = create_app(seed=5)
    client = app.test_client()
    response = post(client, {"X-Sandbox-Response": "generated; case=2"})
    assert_is_case(response, CaseId(5, "analyzeCustomer", 2))
    entry = client.get("/_sandbox/requests").get_json()["requests"][-1]
    assert entry["case"] == "seed=5; operation=analyzeCustomer; case=2"
    assert entry["status"] == response.status_code
    assert entry["verdict"] == "ok"
    post(client)
    assert client.get("/_sandbox/requests").get_json()["requests"][-1]["case"] is None


def test_a_generated_error_is_journaled_and_covered_with_its_code(client):
    """Coverage names answers by status and code: a generated 401 is the documented
    `401 INVALID_API_KEY`, not an undocumented bare 401."""
    response = post(client, {"X-Sandbox-Response": "generated; status=401; case=3"})
    assert response.status_code == 401
    code = response.get_json()["error"]["code"]
    entry = client.get("/_sandbox/requests").get_json()["requests"][-1]
    assert entry["error_code"] == code
    analyze = client.get("/_sandbox/coverage").get_json()["operations"]["analyzeCustomer"]
    assert analyze["answers"][f"401 {code}"] == 1
    assert analyze["undocumented"] == {}


def test_other_operations_and_a_get(client):
    response = client.get(
        "/api/insights/benchmarks/ecommerce",
        headers={"X-API-Key": DEFAULT_KEY, "X-Sandbox-Response": "generated; status=200"},
    )
    assert_is_case(response, CaseId(0, "getIndustryBenchmarks", 1, 200))


def test_generated_answers_count_against_rate_limits():
    client = create_app(rate_limit="2/min").test_client()
    for _ in range(2):
        assert "X-Sandbox-Case" in post(client, {"X-Sandbox-Response": "generated"}).headers
    limited = post(client, {"X-Sandbox-Response": "generated"})
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert "X-Sandbox-Case" not in limited.headers


def test_invalid_requests_still_get_their_real_error(client):
    response = post(client, {"X-Sandbox-Response": "generated"}, body={"customer_id": 5})
    assert response.status_code == 422
    assert "X-Sandbox-Case" not in response.headers


@pytest.mark.parametrize(
    "value",
    [
        "generated; case=-1",
        "generated; case=x",
        "persona",
        "generated; tone=1",
        "generated; case=1; case=2",
        "generated; status=404x",
        "generated; status=302",
    ],
)
def test_bad_header_values_are_a_400_envelope(client, value):
    response = post(client, {"X-Sandbox-Response": value})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "INVALID_SANDBOX_HEADER"
    assert error["details"] == {"header": "X-Sandbox-Response"}
    assert "X-Sandbox-Case" not in response.headers


def test_fault_header_wins_over_response_header(client):
    response = post(client, {"X-Sandbox-Response": "generated", "X-Sandbox-Fault": "503"})
    assert response.status_code == 503
    assert "X-Sandbox-Case" not in response.headers
    assert response.headers["X-Sandbox-Fault-Injected"] == "503; source=header"


def test_rule_respond_generated_with_times_match_and_status(client):
    added = client.post(
        "/_sandbox/faults",
        json={
            "id": "gen",
            "respond": "generated",
            "status": 503,
            "times": 2,
            "match": {"path": ANALYZE},
        },
    )
    assert added.status_code == 201, added.get_json()
    assert_is_case(post(client), CaseId(0, "analyzeCustomer", 1, 503))
    assert_is_case(post(client), CaseId(0, "analyzeCustomer", 2, 503))
    assert "X-Sandbox-Case" not in post(client).headers  # times used up
    other = client.post(
        "/api/intelligence/predict/churn",
        json={"customer_id": "c1"},
        headers={"X-API-Key": DEFAULT_KEY},
    )
    assert "X-Sandbox-Case" not in other.headers  # match.path
    rules = client.get("/_sandbox/faults").get_json()["rules"]
    assert rules[0]["fired"] == 2 and rules[0]["remaining"] == 0


def test_rule_with_a_case_and_probability_is_seeded(client):
    client.post(
        "/_sandbox/faults", json={"respond": "generated", "case": 9, "probability": 0.5, "seed": 3}
    )
    generated = [("X-Sandbox-Case" in post(client).headers) for _ in range(30)]
    assert 0 < sum(generated) < 30
    again = create_app().test_client()
    again.post(
        "/_sandbox/faults", json={"respond": "generated", "case": 9, "probability": 0.5, "seed": 3}
    )
    assert [("X-Sandbox-Case" in post(again).headers) for _ in range(30)] == generated
    assert_is_case(
        post(again, {"X-Sandbox-Response": "generated; case=9"}), CaseId(0, "analyzeCustomer", 9)
    )


def test_rule_with_a_given_answer_serves_it_exactly(client):
    answer = {
        "status": 503,
        "headers": {"Retry-After": "7"},
        "body": {"error": {"code": "SERVICE_UNAVAILABLE", "message": "é"}},
    }
    client.post("/_sandbox/faults", json={"respond": answer, "times": 1})
    response = post(client)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"
    assert response.headers["X-Sandbox-Case"] == "given; source=rule:rule-1"
    assert response.get_json() == answer["body"]
    assert post(client).status_code == 200


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ({"respond": "persona"}, "/respond"),
        ({"respond": "generated", "fault": 500}, "/respond"),
        ({"fault": 500, "case": 3}, "/case"),
        ({"respond": {"status": 200}}, "/respond"),
        ({"respond": "generated", "status": 99}, "/status"),
    ],
)
def test_bad_respond_rules_name_the_field(client, rule, path):
    response = client.post("/_sandbox/faults", json=rule)
    assert response.status_code == 422
    assert path in [e["path"] for e in response.get_json()["error"]["details"]["errors"]]


def test_server_wide_generated_responses():
    settings = Settings.from_sources({"QUIMBI_SANDBOX_RESPONSES": "generated"})
    assert settings.responses == "generated"
    client = create_app(settings).test_client()
    assert_is_case(post(client), CaseId(0, "analyzeCustomer", 1))
    assert_is_case(post(client), CaseId(0, "analyzeCustomer", 2))
    client.post("/_sandbox/reset")
    assert_is_case(post(client), CaseId(0, "analyzeCustomer", 1))  # a reset starts over
    # The control API and docs are never generated.
    assert client.get("/_sandbox/health").status_code == 200
    json.loads(client.get("/openapi.json").get_data())


def test_responses_setting_refuses_other_values():
    with pytest.raises(ValueError, match="persona, generated"):
        Settings.from_sources({"QUIMBI_SANDBOX_RESPONSES": "random"})


def test_the_access_log_shows_the_case(capsys):
    from contract_tests.sandbox_server import SandboxServer

    with SandboxServer(access_log=True) as sandbox:
        requests.post(
            sandbox.url + ANALYZE,
            json=BODY,
            headers={"X-API-Key": DEFAULT_KEY, "X-Sandbox-Response": "generated; case=3"},
            timeout=10,
        )
    line = capsys.readouterr().out.strip()
    assert ANALYZE in line and "case seed=0; operation=analyzeCustomer; case=3" in line


def test_workers_over_one_redis_share_the_case_sequence(redis_url):
    first = create_app(store=redis_url).test_client()
    second = create_app(store=redis_url).test_client()
    cases = [
        post(client, {"X-Sandbox-Response": "generated"}).headers["X-Sandbox-Case"]
        for client in (first, second, first)
    ]
    assert cases == [f"seed=0; operation=analyzeCustomer; case={n}" for n in (1, 2, 3)]
    assert_is_case(
        post(second, {"X-Sandbox-Response": "generated"}), CaseId(0, "analyzeCustomer", 4)
    )
    first.post("/_sandbox/reset")
    assert_is_case(
        post(second, {"X-Sandbox-Response": "generated"}), CaseId(0, "analyzeCustomer", 1)
    )
