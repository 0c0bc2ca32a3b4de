"""`quimbi-sandbox proxy`: forwarding, both sides judged, failures of the upstream, secrets.

The proxy runs as its own process (the sandbox's server, which does the forwarding) in
front of (a) a normal sandbox, (b) mutant sandboxes (tests/mutants.py), (c) a scripted
upstream (a stdlib HTTP server in this process) that answers non-JSON, slowly, by
resetting the connection, and echoes what reached it; and a port nobody listens on.
"""

from __future__ import annotations

import gzip
import json
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from contract_tests.sandbox_server import SandboxServer
from sandbox.docs import DEFAULT_KEY
from sandbox.proxy.judge import ResponseJudge
from sandbox.spec import load_contract
from tests.conftest import ServerProcess, eventually, free_port
from tests.mutants import MUTANTS

PROXY = [sys.executable, "-m", "sandbox", "proxy"]
UPSTREAM_KEY = "qpk_live_abc123xyz"  # the one real key: the client never holds it
CLIENT_KEY = "qpk_client_side_only"  # unknown upstream: works only if replaced
ANALYZE = "/api/intelligence/analyze"
GOOD = {"customer_id": "test_customer_high_ltv", "context": {}}
OFF_CONTRACT = {"customer_idx": "c1"}


def _proxy(upstream: str, *args: str) -> ServerProcess:
    return ServerProcess("--upstream", upstream, *args, command=PROXY)


@pytest.fixture(scope="module")
def upstream() -> Iterator[ServerProcess]:
    server = ServerProcess("--rate-limit", "off").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def proxy(upstream: ServerProcess) -> Iterator[ServerProcess]:
    server = _proxy(upstream.url, "--upstream-api-key", UPSTREAM_KEY).start()
    try:
        yield server
    finally:
        server.stop()


def _post(base: str, body: object, key: str | None = CLIENT_KEY, **headers: str):
    if key is not None:
        headers["X-API-Key"] = key
    return requests.post(base + ANALYZE, json=body, headers=headers, timeout=10)


def _journal(server: ServerProcess, which: str = "requests", **query: str) -> list[dict]:
    answer = requests.get(f"{server.url}/_sandbox/{which}", params=query, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()["requests"]


def test_forwards_with_the_upstream_key_and_returns_the_answer_unchanged(proxy, upstream):
    direct = _post(upstream.url, GOOD, key=UPSTREAM_KEY)
    through = _post(proxy.url, GOOD)
    assert through.status_code == 200 == direct.status_code
    assert through.content == direct.content
    assert through.headers["X-RateLimit-Limit"] == direct.headers["X-RateLimit-Limit"]
    assert through.headers["X-Sandbox-Source"] == "upstream"
    assert through.headers["X-Sandbox-Violations"] == "0"
    entry = _journal(proxy)[-1]
    assert entry["source"] == "upstream"
    assert (entry["request_verdict"], entry["response_verdict"]) == ("ok", "ok")
    assert entry["api_key"] != CLIENT_KEY and entry["api_key"].startswith("qpk_")
    proxy.wait_for_line(f"Proxy        /api/ -> {upstream.url} (timeout 10 s")


def test_cors_headers_are_the_proxys_own(proxy):
    answer = _post(proxy.url, GOOD, Origin="http://localhost:3000")
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "*"  # once, not "*, *"
    assert answer.headers["X-Sandbox-Source"] == "upstream"


def test_the_upstream_answers_its_own_errors(proxy):
    answer = requests.get(proxy.url + "/api/insights/benchmarks/atlantis", timeout=10)
    # No key reached the upstream's check? It did: the proxy sends its own.
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "INDUSTRY_NOT_FOUND"
    assert answer.headers["X-Sandbox-Source"] == "upstream"
    entry = _journal(proxy)[-1]
    assert entry["response_verdict"] == "ok", entry
    assert entry["error_code"] == "INDUSTRY_NOT_FOUND"  # the upstream's code, journaled
    proxy.wait_for_line("404 INDUSTRY_NOT_FOUND")  # the reader thread may lag
    coverage = requests.get(f"{proxy.url}/_sandbox/coverage", timeout=5).json()
    answers = coverage["operations"]["getIndustryBenchmarks"]["answers"]
    assert answers["404 INDUSTRY_NOT_FOUND"] >= 1  # counted as the answer it was
    # The client sent no key: its side broke the contract, whatever the upstream did.
    assert entry["request_verdict"] == "violation"
    assert entry["problems"][0] == {
        "path": "header:X-API-Key",
        "message": "Missing API key.",
        "side": "request",
    }


def test_head_on_a_get_operation_is_judged_as_get_without_a_body(proxy):
    headers = {"X-API-Key": DEFAULT_KEY}
    url = proxy.url + "/api/insights/benchmarks/ecommerce"
    answer = requests.head(url, headers=headers, timeout=10)
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["X-Sandbox-Violations"] == "0"
    entry = _journal(proxy)[-1]
    assert entry["method"] == "HEAD" and entry["operation_id"] == "getIndustryBenchmarks"
    assert entry["request_verdict"] == "ok" and entry["response_verdict"] == "ok", entry


def test_an_off_contract_request_is_flagged_on_the_request_side_and_still_forwarded(proxy):
    answer = _post(proxy.url, OFF_CONTRACT)
    assert answer.status_code == 422  # the upstream's own rejection, passed on
    assert answer.headers["X-Sandbox-Source"] == "upstream"
    assert answer.headers["X-Sandbox-Violations"] == "1"
    flagged = _journal(proxy, "violations", side="request")[-1]
    assert flagged["problems"] == [
        {
            "path": "/customer_id",
            "message": "'customer_id' is a required property",
            "side": "request",
        }
    ]
    assert all(e["id"] != flagged["id"] for e in _journal(proxy, "violations", side="response"))
    proxy.wait_for_line("request /customer_id")  # the access line names the side


def test_violations_side_must_be_request_or_response(proxy):
    answer = requests.get(f"{proxy.url}/_sandbox/violations?side=client", timeout=5)
    assert answer.status_code == 422
    assert answer.json()["error"]["details"]["errors"][0]["path"] == "query:side"


def test_a_path_outside_the_contract_is_forwarded_and_flagged(proxy):
    answer = requests.get(proxy.url + "/api/v2/nothing?x=1", timeout=10)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "ENDPOINT_NOT_FOUND"
    entry = _journal(proxy)[-1]
    assert entry["request_verdict"] == "violation"
    assert "not an operation of the contract" in entry["problems"][0]["message"]


def test_a_chunked_body_and_keep_alive_go_through(proxy):
    body = json.dumps(GOOD).encode()
    with requests.Session() as session:
        for _ in range(3):  # one connection, several exchanges
            answer = session.post(
                proxy.url + ANALYZE,
                data=iter([body[:10], body[10:]]),  # a generator: Transfer-Encoding chunked
                headers={"X-API-Key": CLIENT_KEY, "Content-Type": "application/json"},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            assert answer.headers.get("Connection", "keep-alive").lower() != "close"


def test_faults_and_latency_apply_on_top_of_real_traffic(proxy, upstream):
    before = len(_journal(upstream))
    answer = _post(proxy.url, GOOD, **{"X-Sandbox-Fault": "503"})
    assert answer.status_code == 503
    assert answer.headers["X-Sandbox-Source"] == "sandbox"
    assert answer.headers["X-Sandbox-Fault-Injected"]
    assert len(_journal(upstream)) == before  # answered without calling the upstream
    slow = _post(proxy.url, GOOD, **{"X-Sandbox-Latency": "30"})
    assert slow.status_code == 200
    assert slow.headers["X-Sandbox-Source"] == "upstream"
    assert slow.headers["X-Sandbox-Latency-Injected"] == "30"
    assert _journal(proxy)[-1]["duration_ms"] >= 30
    # The sandbox's own headers went no further than the proxy.
    assert len(_journal(upstream)) == before + 1


def test_runtime_rules_fault_customers_and_network_faults_in_proxy_mode(proxy, upstream):
    before = len(_journal(upstream))
    rule = {"fault": "malformed", "match": {"customer_id": "test_customer_high_ltv"}, "times": 1}
    added = requests.post(f"{proxy.url}/_sandbox/faults", json=rule, timeout=5)
    assert added.status_code == 201, added.text
    whole = _post(upstream.url, GOOD, key=UPSTREAM_KEY).content
    cut = _post(proxy.url, GOOD)
    assert cut.status_code == 200 and cut.headers["X-Sandbox-Source"] == "upstream"
    assert cut.content == whole[: len(whole) // 2]  # the upstream's answer, cut
    assert cut.headers["X-Sandbox-Fault-Injected"]
    unavailable = _post(proxy.url, {"customer_id": "test_customer_unavailable", "context": {}})
    assert unavailable.status_code == 503
    assert unavailable.headers["X-Sandbox-Source"] == "sandbox"
    with pytest.raises(requests.ConnectionError):
        _post(proxy.url, GOOD, **{"X-Sandbox-Fault": "reset"})
    # Forwarded: the malformed one and the direct call; the rest never left the proxy.
    assert len(_journal(upstream)) == before + 2


def test_two_proxy_workers_share_rules_and_journal_over_redis(upstream, redis_url):
    proxy = _proxy(upstream.url, "--workers", "2", "--store", redis_url, "--no-access-log")
    with proxy:
        rule = {"fault": 503, "times": 3, "match": {"path": ANALYZE}}
        assert requests.post(f"{proxy.url}/_sandbox/faults", json=rule, timeout=5).ok
        statuses = []
        for _ in range(12):  # a new connection each: the kernel spreads them over both
            with requests.Session() as fresh:
                answer = fresh.post(
                    proxy.url + ANALYZE, json=GOOD, headers={"X-API-Key": DEFAULT_KEY}, timeout=10
                )
            statuses.append((answer.status_code, answer.headers["X-Sandbox-Source"]))
        assert statuses.count((503, "sandbox")) == 3, statuses
        assert statuses.count((200, "upstream")) == 9, statuses
        entries = eventually(lambda: _journal(proxy), lambda found: len(found) >= 12)
        sources = [e["source"] for e in entries if e["path"] == ANALYZE]
        assert sorted(sources) == ["sandbox"] * 3 + ["upstream"] * 9


def test_proxy_needs_an_upstream():
    import subprocess

    done = subprocess.run([*PROXY, "--port", "1"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "proxy needs --upstream URL" in done.stderr


def test_reject_invalid_requests_answers_without_forwarding(upstream):
    with _proxy(upstream.url, "--reject-invalid-requests") as proxy:
        before = len(_journal(upstream))
        answer = _post(proxy.url, OFF_CONTRACT)
        assert answer.status_code == 422
        assert answer.headers["X-Sandbox-Source"] == "sandbox"
        assert len(_journal(upstream)) == before
        assert _journal(proxy, "violations", side="request")


@pytest.mark.parametrize(
    ("name", "drift"),
    [
        ("renamed_field", "/risk_level"),  # gone from the churn answer (and renamed)
        ("no_rate_limit_headers", "header:X-RateLimit-Limit"),
        ("error_outside_envelope", "/error"),
    ],
)
def test_a_mutant_upstreams_drift_is_a_response_side_violation(name, drift):
    mutant = next(m for m in MUTANTS if m.name == name)
    with SandboxServer(app=mutant.build()) as upstream:
        with _proxy(upstream.url) as proxy:
            if name == "error_outside_envelope":
                answer = _post(proxy.url, {"customer_id": "nobody_here", "context": {}})
            elif name == "renamed_field":
                answer = requests.post(
                    proxy.url + "/api/intelligence/predict/churn",
                    json={"customer_id": "test_customer_high_ltv"},
                    headers={"X-API-Key": UPSTREAM_KEY},
                    timeout=10,
                )
            else:
                answer = _post(proxy.url, GOOD, key=UPSTREAM_KEY)
            assert answer.headers["X-Sandbox-Source"] == "upstream"
            assert int(answer.headers["X-Sandbox-Violations"]) >= 1
            entries = _journal(proxy, "violations", side="response")
            assert len(entries) == 1, entries
            entry = entries[0]
            assert entry["request_verdict"] == "ok"
            paths = [p["path"] for p in entry["problems"] if p["side"] == "response"]
            assert any(path.startswith(drift) for path in paths), entry["problems"]
            proxy.wait_for_line(f"response {drift}")


class _Scripted(BaseHTTPRequestHandler):
    """What it does is the request's X-Script header (sent on by the proxy)."""

    protocol_version = "HTTP/1.1"
    seen: list[dict[str, str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        script = self.headers.get("X-Script", "")
        if script == "slow":
            time.sleep(1.5)
        if script == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if script == "404":
            self._send(404, b'{"error":{"code":"ENDPOINT_NOT_FOUND","message":"No."}}')
            return
        if script == "501":
            self._send(501, b"not implemented here", "text/plain")
            return
        if script == "untyped":
            self._send(200, b"ok", None)
            return
        if script == "non-ascii":  # send_header writes latin-1: these are the bytes sent
            self.send_response(200)
            self.send_header("X-Latin", "caf\xe9")  # b"caf\xe9"
            self.send_header("X-Utf8", "café".encode().decode("latin-1"))  # b"caf\xc3\xa9"
            self._send_body(b"{}")
            return
        if script == "gzip":
            body = gzip.compress(json.dumps({"archetype": "wrong"}).encode())
            headers = [("Content-Type", "application/json"), ("Content-Encoding", "gzip")]
        else:
            body = b"<html>staging says hello</html>"
            headers = [("Content-Type", "text/html")]
        self.send_response(200)
        for name, value in [
            *headers,
            ("Content-Length", str(len(body))),
            ("Keep-Alive", "timeout=5"),
            ("Connection", "keep-alive, X-Hop"),
            ("X-Hop", "hop-only"),
            ("X-End", "end-to-end"),
        ]:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send(self, status: int, body: bytes, content_type: str | None = "application/json"):
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self._send_body(body)

    def _send_body(self, body: bytes) -> None:
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer


@pytest.fixture(scope="module")
def scripted() -> Iterator[tuple[ThreadingHTTPServer, ServerProcess]]:
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Scripted)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy = _proxy(
        f"http://127.0.0.1:{port}", "--upstream-timeout", "0.5", "--upstream-api-key", UPSTREAM_KEY
    )
    fallback = _proxy(
        f"http://127.0.0.1:{port}", "--upstream-timeout", "0.5", "--fallback", "sandbox"
    )
    try:
        proxy.start()
        fallback.start()
        yield server, proxy, fallback
    finally:
        for started in (proxy, fallback):
            if started.process is not None:
                started.stop()
        server.shutdown()
        server.server_close()


def test_hop_by_hop_headers_stop_at_the_proxy_both_ways(scripted):
    _, proxy, _ = scripted
    _Scripted.seen.clear()
    answer = _post(
        proxy.url,
        OFF_CONTRACT,
        **{"Connection": "keep-alive, X-Client-Hop", "X-Client-Hop": "1", "X-End": "kept"},
    )
    assert answer.status_code == 200
    arrived = _Scripted.seen[-1]
    assert arrived["x-end"] == "kept" and "x-client-hop" not in arrived
    assert arrived["x-api-key"] == UPSTREAM_KEY
    assert arrived["host"] != proxy.url.removeprefix("http://")
    assert "x-hop" not in {k.lower() for k in answer.headers}
    assert "keep-alive" not in {k.lower() for k in answer.headers}
    assert answer.headers["X-End"] == "end-to-end"


def test_a_non_json_answer_is_passed_on_and_judged_as_such(scripted):
    _, proxy, _ = scripted
    answer = _post(proxy.url, OFF_CONTRACT)
    assert answer.status_code == 200
    assert answer.content == b"<html>staging says hello</html>"
    assert answer.headers["Content-Type"] == "text/html"
    entry = _journal(proxy)[-1]
    sides = {(p["side"], p["path"]) for p in entry["problems"]}
    assert ("request", "/customer_id") in sides  # the client's mistake, flagged too
    assert ("response", "header:Content-Type") in sides
    assert ("response", "header:X-RateLimit-Limit") in sides
    assert answer.headers["X-Sandbox-Violations"] == str(len(entry["problems"]))


def test_an_answer_without_a_content_type_is_judged_and_gains_the_default(scripted):
    answer = _post(scripted[1].url, GOOD, **{"X-Script": "untyped"})
    assert answer.status_code == 200 and answer.content == b"ok"
    # What RFC 9110 (8.3) says a recipient may assume; the server always names one.
    assert answer.headers["Content-Type"] == "application/octet-stream"
    entry = _journal(scripted[1])[-1]
    assert {
        "path": "header:Content-Type",
        "message": "absent; documented: application/json",
    }.items() <= next(p for p in entry["problems"] if p["path"] == "header:Content-Type").items()


def test_the_upstreams_header_bytes_come_back_as_they_were(scripted):
    answer = _post(scripted[1].url, GOOD, **{"X-Script": "non-ascii"})
    assert answer.status_code == 200
    # requests reads header bytes as latin-1: equal strings are equal bytes.
    assert answer.headers["X-Latin"] == "caf\xe9"
    assert answer.headers["X-Utf8"] == "café".encode().decode("latin-1")


def test_a_compressed_answer_goes_back_compressed_and_is_judged_decoded(scripted):
    _, proxy, _ = scripted
    answer = _post(proxy.url, GOOD, **{"X-Script": "gzip", "Accept-Encoding": "gzip"})
    assert answer.json() == {"archetype": "wrong"}  # requests decoded what came gzipped
    assert answer.headers["Content-Encoding"] == "gzip"
    problems = _journal(proxy)[-1]["problems"]
    assert any(p["side"] == "response" and p["path"] == "/archetype" for p in problems)


@pytest.mark.parametrize(("script", "failure"), [("slow", "timeout"), ("reset", "reset")])
def test_an_upstream_failure_is_a_503_saying_how(scripted, script, failure):
    _, proxy, _ = scripted
    answer = _post(proxy.url, OFF_CONTRACT, **{"X-Script": script})
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert error["details"]["failure"] == failure
    assert answer.headers["X-Sandbox-Source"] == "sandbox"
    entry = _journal(proxy)[-1]
    assert entry["source"] == "sandbox" and entry["error_code"] == "SERVICE_UNAVAILABLE"
    assert entry["request_verdict"] == "violation"  # the client's side is judged anyway


def test_an_upstream_that_is_down_is_a_503_saying_so():
    with _proxy(f"http://127.0.0.1:{free_port()}") as proxy:
        answer = _post(proxy.url, GOOD)
        assert answer.status_code == 503
        details = answer.json()["error"]["details"]
        assert details["failure"] == "unreachable" and details["upstream"].startswith("http://")
        assert answer.headers["Retry-After"] == "1"


def test_the_upstream_key_never_reaches_the_journal_log_or_answers(scripted, proxy):
    answers = [
        _post(proxy.url, GOOD),
        _post(proxy.url, OFF_CONTRACT),
        _post(scripted[1].url, GOOD, **{"X-Script": "reset"}),
        _post(scripted[1].url, GOOD),
        _post(scripted[2].url, GOOD, key=DEFAULT_KEY, **{"X-Script": "404"}),
    ]
    for server in (proxy, scripted[1], scripted[2]):
        assert UPSTREAM_KEY not in json.dumps(_journal(server))
        assert UPSTREAM_KEY not in server.output()
    for answer in answers:
        assert UPSTREAM_KEY not in answer.text
        assert UPSTREAM_KEY not in json.dumps(dict(answer.headers))


@pytest.mark.parametrize(
    ("script", "reason"), [("404", "answered 404"), ("501", "answered 501"), ("reset", "reset")]
)
def test_fallback_sandbox_answers_what_the_upstream_lacks(scripted, upstream, script, reason):
    _, _, fallback = scripted
    answer = _post(fallback.url, GOOD, key=DEFAULT_KEY, **{"X-Script": script})
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Sandbox-Source"] == "sandbox"
    assert answer.content == _post(upstream.url, GOOD, key=DEFAULT_KEY).content  # the model's
    assert answer.headers["X-RateLimit-Limit"]  # as serve answers, its headers too
    entry = _journal(fallback)[-1]
    assert entry["source"] == "sandbox" and reason in entry["fallback"]
    assert entry["response_verdict"] == "ok"


def test_fallback_answers_as_serve_would_an_unknown_key_or_a_bad_body(scripted):
    _, _, fallback = scripted
    stranger = _post(fallback.url, GOOD, key=CLIENT_KEY, **{"X-Script": "404"})
    assert stranger.status_code == 401
    assert stranger.json()["error"]["code"] == "INVALID_API_KEY"
    invalid = _post(fallback.url, OFF_CONTRACT, key=DEFAULT_KEY, **{"X-Script": "404"})
    assert invalid.status_code == 422
    assert invalid.headers["X-Sandbox-Source"] == "sandbox"


def test_without_fallback_a_missing_endpoint_passes_through_as_a_response_violation(scripted):
    _, proxy, _ = scripted
    answer = _post(proxy.url, GOOD, **{"X-Script": "404"})
    assert answer.status_code == 404
    assert answer.headers["X-Sandbox-Source"] == "upstream"
    entry = _journal(proxy)[-1]
    assert entry["fallback"] is None
    assert {"path": "/error/code", "side": "response"}.items() <= entry["problems"][0].items()


def test_an_operations_own_404_is_a_real_answer_not_a_missing_endpoint():
    judge = ResponseJudge(load_contract())
    json_type = [("Content-Type", "application/json")]
    real = b'{"error":{"code":"CUSTOMER_NOT_FOUND","message":"No such customer."}}'
    missing = b'{"error":{"code":"ENDPOINT_NOT_FOUND","message":"No."}}'
    assert judge.is_real_answer("analyzeCustomer", 404, json_type, real)
    assert not judge.is_real_answer("analyzeCustomer", 404, json_type, missing)
    assert not judge.is_real_answer("analyzeCustomer", 404, json_type, b"<html>")
    assert not judge.is_real_answer("analyzeCustomer", 501, json_type, real)


def test_record_then_replay_a_session(scripted, tmp_path):
    server, _, _ = scripted
    recording = tmp_path / "staging.jsonl"
    upstream = f"http://127.0.0.1:{server.server_address[1]}"
    with _proxy(upstream, "--record", str(recording), "--upstream-api-key", UPSTREAM_KEY) as proxy:
        staged = _post(proxy.url, GOOD, key=DEFAULT_KEY)
        _post(proxy.url, GOOD, key=DEFAULT_KEY, **{"X-Script": "404"})
        with pytest.raises(requests.ConnectionError):
            _post(proxy.url, OFF_CONTRACT, key=DEFAULT_KEY, **{"X-Sandbox-Fault": "reset"})
    lines = [json.loads(line) for line in recording.read_text().splitlines()]
    assert len(lines) == 2  # a dropped connection had no answer to record
    first = lines[0]
    assert first["format"] == "quimbi-sandbox-recording/1"
    assert first["match"] == {
        "method": "POST",
        "path": ANALYZE,
        "tenant": "linda_quilting",  # the tenant of qpk_test_sandbox
        "body": json.dumps(GOOD, sort_keys=True, separators=(",", ":")),
    }
    assert first["response"]["status"] == 200
    assert first["response"]["body"] == staged.text
    assert (first["source"], first["response_verdict"]) == ("upstream", "violation")
    sent_key = dict(first["request"]["headers"])["X-Api-Key"]
    assert sent_key != DEFAULT_KEY and sent_key.endswith("…")
    assert UPSTREAM_KEY not in recording.read_text()
    with ServerProcess("--replay", str(recording)) as replaying:
        reordered = {"context": {}, "customer_id": "test_customer_high_ltv"}
        again = _post(replaying.url, reordered, key=DEFAULT_KEY)
        assert (again.status_code, again.text) == (200, staged.text)  # staging's, not ours
        assert again.headers["X-RateLimit-Limit"]  # the sandbox's own limits
        assert "X-Sandbox-Source" not in again.headers
        other = _post(replaying.url, {"customer_id": "someone_else"}, key=DEFAULT_KEY)
        assert other.json()["customer_id"] == "someone_else"  # from the model
        entries = _journal(replaying)
        assert [e["case"] for e in entries] == ["replay:1", None]


def test_a_bad_replay_file_stops_serve(tmp_path):
    import subprocess

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "quimbi-sandbox-recording/0"}\n')
    done = subprocess.run(
        [sys.executable, "-m", "sandbox", "serve", "--port", "1", "--replay", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "line 1" in done.stderr and "quimbi-sandbox-recording/1" in done.stderr


def test_proxy_mode_under_another_wsgi_server_says_it_cannot_forward():
    from sandbox.app import create_app

    client = create_app(upstream="http://127.0.0.1:1").test_client()
    answer = client.post(ANALYZE, json=GOOD, headers={"X-API-Key": DEFAULT_KEY})
    assert answer.status_code == 500
    assert "quimbi-sandbox proxy" in answer.get_json()["error"]["message"]
