"""Retry discipline: each way a client can break the contract's retry rules is reported
with the requests involved; a client that follows them is not."""

from __future__ import annotations

import time

import pytest

from contract_tests.coverage import format_table
from contract_tests.sandbox_server import SandboxServer
from sandbox.app import create_app
from sandbox.behaviour import judge
from tests.conftest import ServerProcess, eventually

CHURN = "/api/intelligence/predict/churn"
KEY = {"X-API-Key": "test_key_12345"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(clock):
    return create_app(rate_limit="off", rate_limit_clock=clock).test_client()


def send(client, customer_id: str = "c1", **headers: str):
    return client.post(CHURN, json={"customer_id": customer_id}, headers={**KEY, **headers})


def behaviour_problems(client) -> list[dict]:
    entries = client.get("/_sandbox/violations").json["requests"]
    return [p for e in entries for p in e["problems"] if p.get("kind") == "behaviour"]


def test_a_resent_404_is_reported_with_both_requests(client, clock):
    first = send(client, "test_customer_not_found")
    clock.now += 0.2
    second = send(client, "test_customer_not_found")
    assert first.status_code == second.status_code == 404
    entries = client.get("/_sandbox/requests").json["requests"]
    [problem] = behaviour_problems(client)
    assert problem["rule"] == "resent_4xx"
    assert [r["id"] for r in problem["requests"]] == [e["id"] for e in entries]
    assert problem["requests"][0]["status"] == 404
    assert problem["requests"][0]["error_code"] == "CUSTOMER_NOT_FOUND"
    assert "0.20 s after a 404 CUSTOMER_NOT_FOUND" in problem["message"]
    assert entries[1]["verdict"] == "violation" and entries[0]["verdict"] == "ok"
    report = client.get("/_sandbox/coverage").json
    assert report["behaviour_problems"] == 1
    assert report["operations"]["predictChurn"]["behaviour"]["resent_4xx"] == 1


def test_the_same_json_in_another_key_order_is_the_same_request(client, clock):
    body = '{"customer_id": "test_customer_not_found", "x": 1}'
    reordered = '{"x":1,"customer_id":"test_customer_not_found"}'
    headers = {**KEY, "Content-Type": "application/json"}
    client.post(CHURN, data=body, headers=headers)
    client.post(CHURN, data=reordered, headers=headers)
    assert [p["rule"] for p in behaviour_problems(client)] == ["resent_4xx"]


def test_a_429_retried_before_its_retry_after(client, clock):
    rule = {"fault": 429, "retry_after": 5, "times": 2, "match": {"path": CHURN}}
    client.post("/_sandbox/faults", json=rule)
    assert send(client).headers["Retry-After"] == "5"
    clock.now += 1
    send(client)  # too early
    clock.now += 5
    assert send(client).status_code == 200  # waited: fine
    [problem] = behaviour_problems(client)
    assert problem["rule"] == "early_429_retry"
    assert "Retry-After asked for 5 s" in problem["message"]
    assert [r.get("status") for r in problem["requests"]] == [429, None]


def test_a_5xx_retried_faster_than_the_backoff(client, clock):
    client.post("/_sandbox/faults", json={"fault": 500, "times": 2, "match": {"path": CHURN}})
    send(client)
    clock.now += 1.0
    send(client)  # retry 1 after 1 s: fine
    clock.now += 0.5
    send(client)  # retry 2 after 0.5 s: the backoff asks for 2 s
    [problem] = behaviour_problems(client)
    assert problem["rule"] == "fast_5xx_retry"
    assert "retry 2 sent 0.50 s after a 500 INTERNAL_ERROR" in problem["message"]
    assert [r.get("status") for r in problem["requests"]] == [500, 500, None]


def test_a_503_retry_after_longer_than_the_backoff_wins(client, clock):
    client.post("/_sandbox/faults", json={"fault": 503, "retry_after": 3, "times": 1, "match": {}})
    send(client)
    clock.now += 2
    send(client)
    [problem] = behaviour_problems(client)
    assert problem["rule"] == "fast_5xx_retry" and "Retry-After: 3" in problem["message"]


def test_more_than_three_retries(client, clock):
    for wait in (0, 1, 2, 4, 8):
        clock.now += wait
        assert send(client, "test_customer_error_500").status_code == 500
    [problem] = behaviour_problems(client)
    assert problem["rule"] == "too_many_retries"
    assert len(problem["requests"]) == 5  # the original, three retries, the fourth


def test_a_client_following_the_documented_backoff_is_not_flagged(client, clock):
    client.post("/_sandbox/faults", json={"fault": 503, "times": 3, "match": {"path": CHURN}})
    for wait in (0, 1, 2, 4):
        clock.now += wait
        answer = send(client)
    assert answer.status_code == 200
    client.post("/_sandbox/faults", json={"fault": 429, "retry_after": 7, "times": 1})
    send(client, "c2")
    clock.now += 7
    assert send(client, "c2").status_code == 200
    assert behaviour_problems(client) == []
    assert client.get("/_sandbox/coverage").json["behaviour_problems"] == 0


def test_repeats_after_a_200_or_after_ingesting_are_new_requests(client, clock):
    for _ in range(5):
        assert send(client, "test_customer_high_ltv").status_code == 200
    strict = create_app(rate_limit="off", customers="strict", rate_limit_clock=clock)
    strict_client = strict.test_client()
    assert send(strict_client, "cust_new").status_code == 404
    order = {
        "customer_id": "cust_new",
        "order_id": "o1",
        "order_date": "2024-01-10T09:00:00Z",
        "total_price": 10.0,
    }
    ingest = strict_client.post(
        "/api/data/ingest_orders", json={"source": "s", "orders": [order]}, headers=KEY
    )
    assert ingest.status_code == 200
    assert send(strict_client, "cust_new").status_code == 200
    assert behaviour_problems(client) == [] and behaviour_problems(strict_client) == []


def test_reset_forgets_the_history_and_the_checks_can_be_turned_off(clock):
    client = create_app(rate_limit="off", rate_limit_clock=clock).test_client()
    send(client, "test_customer_not_found")
    client.post("/_sandbox/reset")
    send(client, "test_customer_not_found")
    assert behaviour_problems(client) == []
    off = create_app(rate_limit="off", behaviour_checks=False).test_client()
    send(off, "test_customer_not_found")
    send(off, "test_customer_not_found")
    assert behaviour_problems(off) == []


def test_network_faults_end_the_history():
    history = [{"id": "1", "time": "t", "t": 0.0, "status": 404, "error_code": "X"}]
    assert judge(history, 5.0)[0] == "resent_4xx"
    client = create_app(rate_limit="off").test_client()
    with pytest.raises(ConnectionResetError):
        send(client, "test_customer_not_found", **{"X-Sandbox-Fault": "reset"})
    send(client, "test_customer_not_found")
    assert behaviour_problems(client) == []


def test_the_fixture_fails_a_client_that_retries_a_404():
    with SandboxServer() as sandbox:
        for _ in range(2):
            sandbox.http.post(
                sandbox.url + CHURN,
                json={"customer_id": "test_customer_not_found"},
                headers={"X-API-Key": sandbox.api_key},
            )
        with pytest.raises(AssertionError, match="resent_4xx: sent again"):
            sandbox.assert_no_violations()
        table = format_table(sandbox.coverage())
    assert "retry discipline broken: resent_4xx x1" in table
    assert "1 retry-discipline problem(s)" in table


def test_two_workers_on_redis_judge_one_history_in_real_time(redis_url):
    with ServerProcess("--store", redis_url, "--workers", "2", "--rate-limit", "off") as server:
        # The flaky customer: 503 (Retry-After 1) twice, then 200; 1 s and 2 s waits.
        for wait in (0, 1.0, 2.0):
            time.sleep(wait)
            answer = server.post(CHURN, {"customer_id": "test_customer_flaky"})
        assert answer.status_code == 200
        assert server.get("/_sandbox/violations", key=None).json()["count"] == 0
        for _ in range(3):
            server.post(CHURN, {"customer_id": "test_customer_not_found"})
        found = eventually(
            lambda: server.get("/_sandbox/violations", key=None).json()["requests"],
            lambda entries: len(entries) >= 2,
        )
        report = server.get("/_sandbox/coverage", key=None).json()
    assert [e["problems"][0]["rule"] for e in found] == ["resent_4xx", "resent_4xx"]
    assert len(found[1]["problems"][0]["requests"]) == 3
    assert report["operations"]["predictChurn"]["behaviour"]["resent_4xx"] == 2


def test_waits_count_from_when_a_held_answer_was_sent(client, clock):
    # The 503 reached the client 0.2 s after it was decided: 1.1 s later is 0.9 s of backoff.
    send(client, "c9", **{"X-Sandbox-Fault": "503", "X-Sandbox-Latency": "200"})
    clock.now += 1.1
    send(client, "c9")
    [problem] = behaviour_problems(client)
    assert problem["rule"] == "fast_5xx_retry" and "sent 0.90 s after" in problem["message"]
