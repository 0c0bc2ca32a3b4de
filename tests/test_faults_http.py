"""Every fault kind through a real HTTP client against a real server on a free port."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
import requests
from werkzeug.serving import make_server

from sandbox.app import create_app
from tests.conftest import DEFAULT_KEY, ServerProcess, free_port

ANALYZE = "/api/intelligence/analyze"
STATUS_CODES = {
    "401": "INVALID_API_KEY",
    "403": "INSUFFICIENT_PERMISSIONS",
    "404": "CUSTOMER_NOT_FOUND",
    "429": "RATE_LIMIT_EXCEEDED",
    "500": "INTERNAL_ERROR",
    "503": "SERVICE_UNAVAILABLE",
}


@pytest.fixture(scope="module")
def faulty():
    # A high limit: these tests send many requests with one key.
    with ServerProcess(
        "--seed", "11", "--hang-cap-seconds", "3", "--rate-limit", "100000/min,1000000/hour"
    ) as running:
        yield running


@pytest.fixture
def srv(faulty):
    yield faulty
    assert requests.delete(faulty.url + "/_sandbox/faults", timeout=5).ok


def analyze(server, customer_id="cust_1", key=DEFAULT_KEY, timeout=10, **headers):
    return requests.post(
        server.url + ANALYZE,
        data=json.dumps({"customer_id": customer_id}),
        headers={"Content-Type": "application/json", "X-API-Key": key, **headers},
        timeout=timeout,
    )


def add_rule(server, rule):
    response = server.post("/_sandbox/faults", rule, key=None)
    assert response.status_code == 201, response.text
    return response.json()["rules"][0]


@pytest.mark.parametrize("fault", sorted(STATUS_CODES))
def test_status_faults_look_like_real_errors(srv, contract, fault):
    response = analyze(srv, **{"X-Sandbox-Fault": fault})
    assert response.status_code == int(fault)
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Sandbox-Fault-Injected"] == f"{fault}; source=header"
    error = response.json()["error"]
    assert error["code"] == STATUS_CODES[fault]
    if fault in {"429", "503"}:
        assert int(response.headers["Retry-After"]) >= 1
    if fault == "404":
        assert error["details"] == {"customer_id": "cust_1"}
    rate_headers = {h for h in response.headers if h.startswith("X-RateLimit-")}
    assert rate_headers == (
        set() if fault == "401" else {"X-RateLimit-" + s for s in ("Limit", "Remaining", "Reset")}
    )
    if str(fault) in contract.document["paths"][ANALYZE]["post"]["responses"]:
        assert contract.validate_response("analyzeCustomer", int(fault), response.json()) == []


def test_injected_404_without_a_customer(srv):
    industry = srv.get("/api/insights/benchmarks/retail", headers={"X-Sandbox-Fault": "404"})
    assert industry.status_code == 404
    assert industry.json()["error"]["code"] == "INDUSTRY_NOT_FOUND"
    assert industry.json()["error"]["details"]["industry"] == "retail"
    position = srv.get("/api/insights/my-position", headers={"X-Sandbox-Fault": "404"})
    assert position.json()["error"]["code"] == "ENDPOINT_NOT_FOUND"


def test_reset_drops_the_connection_without_an_answer(srv):
    with pytest.raises(requests.ConnectionError) as caught:
        analyze(srv, **{"X-Sandbox-Fault": "reset"})
    assert "reset" in str(caught.value).lower()
    assert analyze(srv).status_code == 200  # the server is fine


def test_malformed_is_a_200_with_truncated_json(srv):
    response = analyze(
        srv, customer_id="test_customer_high_ltv", **{"X-Sandbox-Fault": "malformed"}
    )
    assert response.status_code == 200
    assert response.headers["X-Sandbox-Fault-Injected"] == "malformed; source=header"
    assert int(response.headers["Content-Length"]) == len(response.content) > 0
    assert response.content.startswith(b'{"customer_id":"test_customer_high_ltv"')
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_hang_holds_the_connection_then_closes_it(srv):
    add_rule(srv, {"fault": "hang", "hang_seconds": 1, "match": {"customer_id": "hang_me"}})
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        analyze(srv, customer_id="hang_me")
    assert time.monotonic() - started >= 1.0
    with pytest.raises(requests.ReadTimeout):
        analyze(srv, customer_id="hang_me", timeout=0.3)


def test_times_three_gives_exactly_three_faults_then_normal(srv):
    rule = add_rule(
        srv, {"fault": 503, "times": 3, "retry_after": 7, "match": {"path": "/api/intelligence/*"}}
    )
    statuses = [analyze(srv).status_code for _ in range(5)]
    assert statuses == [503, 503, 503, 200, 200]
    [listed] = srv.get("/_sandbox/faults", key=None).json()["rules"]
    assert (listed["id"], listed["remaining"], listed["fired"]) == (rule["id"], 0, 3)


def test_rule_answers_carry_code_message_and_retry_after(srv):
    add_rule(
        srv,
        {
            "id": "maintenance",
            "fault": 503,
            "code": "MAINTENANCE",
            "message": "Back soon.",
            "retry_after": 30,
            "match": {"method": "GET"},
        },
    )
    response = srv.get("/api/insights/benchmarks/retail")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.headers["X-Sandbox-Fault-Injected"] == "503; source=rule:maintenance"
    assert response.json()["error"]["code"] == "MAINTENANCE"
    assert response.json()["error"]["message"] == "Back soon."
    assert analyze(srv).status_code == 200  # POST: not matched


def test_control_api_lists_deletes_and_validates(srv):
    add_rule(srv, {"id": "a", "fault": 500, "match": {"customer_id": "x"}})
    add_rule(srv, {"id": "b", "latency": "p50=10,p99=20"})
    assert [r["id"] for r in srv.get("/_sandbox/faults", key=None).json()["rules"]] == ["a", "b"]
    assert requests.delete(srv.url + "/_sandbox/faults/a", timeout=5).json() == {"deleted": 1}
    missing = requests.delete(srv.url + "/_sandbox/faults/a", timeout=5)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "FAULT_RULE_NOT_FOUND"
    bad = srv.post("/_sandbox/faults", {"fault": 418, "times": -1}, key=None)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "VALIDATION_ERROR"
    assert {e["path"] for e in bad.json()["error"]["details"]["errors"]} == {"/fault", "/times"}
    bad_list = srv.post("/_sandbox/faults", [{"fault": 500}, {"latency": "x"}], key=None)
    assert bad_list.json()["error"]["details"]["errors"][0]["path"] == "/1/latency"
    not_json = requests.post(
        srv.url + "/_sandbox/faults", data="{", headers={"Content-Type": "application/json"}
    )
    assert not_json.json()["error"]["code"] == "MALFORMED_JSON"
    bad_header = analyze(srv, **{"X-Sandbox-Fault": "teapot"})
    assert bad_header.status_code == 422
    assert "X-Sandbox-Fault" in bad_header.json()["error"]["details"]["errors"][0]["message"]


def test_latency_header_delays_at_least_that_long(srv):
    started = time.monotonic()
    response = analyze(srv, **{"X-Sandbox-Latency": "300"})
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200
    assert response.headers["X-Sandbox-Latency-Injected"] == "300"


def test_magic_error_customers(srv):
    error = analyze(srv, customer_id="test_customer_error_500")
    assert error.status_code == 500 and error.json()["error"]["code"] == "INTERNAL_ERROR"
    unavailable = srv.post(
        "/api/intelligence/predict/churn", {"customer_id": "test_customer_unavailable"}
    )
    assert unavailable.status_code == 503 and unavailable.headers["Retry-After"] == "2"
    assert unavailable.headers["X-Sandbox-Fault-Injected"] == (
        "503; source=customer:test_customer_unavailable"
    )


def test_flaky_customer_per_tenant_and_reset(srv):
    flaky = "test_customer_flaky"
    assert [analyze(srv, flaky).status_code for _ in range(3)] == [503, 503, 200]
    assert [analyze(srv, flaky, key="qpk_test_acme").status_code for _ in range(3)] == [
        503,
        503,
        200,
    ]
    requests.delete(srv.url + "/_sandbox/faults", timeout=5)
    assert analyze(srv, flaky).status_code == 503


def test_slow_customer_answers_after_three_seconds(srv):
    started = time.monotonic()
    response = analyze(srv, "test_customer_slow")
    assert time.monotonic() - started >= 3.0
    assert response.status_code == 200
    assert response.json()["customer_id"] == "test_customer_slow"


def test_timeout_customer_outlasts_a_client_timeout(srv):
    # The server holds it 35 s (tests/test_faults.py checks the decision); this server
    # caps every hold at 3 s so it stops quickly.
    with pytest.raises(requests.ReadTimeout):
        analyze(srv, "test_customer_timeout", timeout=1)


def test_magic_catalogue(srv):
    catalogue = srv.get("/_sandbox/magic", key=None).json()
    customers = {c["customer_id"]: c for c in catalogue["customers"]}
    assert {"test_customer_high_ltv", "test_customer_not_found", "test_customer_flaky"} <= set(
        customers
    )
    assert customers["test_customer_flaky"]["first_calls"] == 2
    assert customers["test_customer_timeout"]["latency"] == "35000"
    assert all(c["description"] for c in customers.values())
    keys = {k["key"]: k for k in catalogue["keys"]}
    assert keys["qpk_test_ratelimited"]["rate_limited"] is True
    assert keys["qpk_test_expired"]["status"] == "expired"
    assert {h["name"] for h in catalogue["headers"]} >= {"X-Sandbox-Fault", "X-Sandbox-Latency"}


def test_seeded_probability_replays_on_two_servers(tmp_path):
    rules = tmp_path / "faults.yaml"
    rules.write_text(
        "- id: coin\n  fault: 503\n  probability: 0.5\n  match: {path: /api/intelligence/*}\n"
    )
    sequences = []
    for _ in range(2):
        with ServerProcess("--seed", "5", "--faults", str(rules)) as server:
            statuses = [analyze(server).status_code for _ in range(30)]
            [rule] = server.get("/_sandbox/faults", key=None).json()["rules"]
            assert rule["evaluated"] == 30 and rule["fired"] == statuses.count(503)
        sequences.append(statuses)
    assert sequences[0] == sequences[1]
    assert {200, 503} == set(sequences[0])


def test_global_latency_delays_every_answer():
    with ServerProcess("--latency", "150") as server:
        for response in [analyze(server), server.get("/api/insights/benchmarks/retail")]:
            assert response.elapsed.total_seconds() >= 0.15
            assert response.headers["X-Sandbox-Latency-Injected"] == "150"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--faults", "{missing}"], "cannot read"),
        (["--faults", "{bad}"], "/0/fault"),
        (["--latency", "soon"], "--latency"),
        (["--rate-limit", "lots"], "--rate-limit"),
        (["--hang-cap-seconds", "0"], "--hang-cap-seconds"),
    ],
)
def test_bad_fault_settings_exit_2(tmp_path, args, needle):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- fault: 999\n")
    args = [a.format(missing=tmp_path / "none.yaml", bad=bad) for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "serve", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr


@pytest.fixture
def werkzeug_server():
    """The app in-process on werkzeug's threaded server, as the contract kit runs it."""
    app = create_app(seed=3, hang_cap_seconds=0.5)
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def test_network_faults_on_werkzeug(werkzeug_server):
    headers = {"Content-Type": "application/json", "X-API-Key": DEFAULT_KEY}
    body = json.dumps({"customer_id": "cust_1"})
    with requests.Session() as session:

        def post(fault: str | None = None) -> requests.Response:
            extra = {"X-Sandbox-Fault": fault} if fault else {}
            return session.post(
                werkzeug_server + ANALYZE, data=body, headers={**headers, **extra}, timeout=5
            )

        with pytest.raises(requests.ConnectionError, match="reset"):
            post("reset")
        with pytest.raises(requests.ConnectionError):
            post("hang")
        malformed = post("malformed")
        assert int(malformed.headers["Content-Length"]) == len(malformed.content)
        with pytest.raises(requests.JSONDecodeError):
            malformed.json()
        assert post().status_code == 200


def test_fault_customers_exist_in_strict_mode():
    client = create_app(seed=3, customers="strict").test_client()
    headers = {"X-API-Key": DEFAULT_KEY}
    flaky = [
        client.post(ANALYZE, json={"customer_id": "test_customer_flaky"}, headers=headers)
        for _ in range(3)
    ]
    assert [r.status_code for r in flaky] == [503, 503, 200]
    slow = client.post(
        ANALYZE,
        json={"customer_id": "test_customer_slow"},
        headers={**headers, "X-Sandbox-Latency": "0"},  # the header wins over its 3 s
    )
    assert slow.status_code == 200
    other = client.post(ANALYZE, json={"customer_id": "cust_1"}, headers=headers)
    assert other.status_code == 404
