"""The kit against rate-limited targets: it plans, paces by the target's headers, and
reports its own throttling as inconclusive (exit 3), never as the server's drift.

Targets listen on 127.0.0.2, a loopback address the kit has no special case for. Runs
are sized to one minute's budget (or to an hour that is nearly spent), so no test waits
for a window to reset.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET

import pytest
import requests

from contract_tests import cli, plan, runner
from contract_tests.registry import REGISTRY, Exchange
from contract_tests.sandbox_server import SandboxServer
from contract_tests.target import (
    REMOTE_DEFAULT_RATE,
    Options,
    Pacer,
    Target,
    Throttled,
    Window,
    throttle_pause,
)
from sandbox.ratelimit import parse_rate_limit
from tests import mutants
from tests.conftest import DEFAULT_KEY, ServerProcess

ALIAS = "127.0.0.2"
# A mixed selection: two operations' schema explorations, the semantic checks of one
# operation, and the links state machine.
MIXED = ["schema:getIndustryBenchmarks", "schema:predictChurn", "analyzeCustomer", "stateful_links"]
PLAN_REQUESTS = re.compile(r"plan: ~(\d+) requests")
SENT = re.compile(r"; (\d+) requests to ")


def contract(url: str, *args: str) -> list[str]:
    return ["--base-url", url, "--api-key", DEFAULT_KEY, "--seed", "3", *args]


def clear_of_the_hour_boundary() -> None:
    """Tests that spend an hour's budget must not see it renewed halfway."""
    left = 3600 - time.time() % 3600
    if left < 20:
        time.sleep(left + 1)


def behind(app, limits: str):
    """A sandbox app (a mutant too) with these rate limits instead of the kit's."""
    app.extensions["quimbi"].limiter.limits = parse_rate_limit(limits)
    return app


def test_sized_run_behind_the_default_limits_passes_and_the_plan_is_honest(tmp_path, capsys):
    report = tmp_path / "qa.xml"
    with ServerProcess("--seed", "0", host=ALIAS) as server:  # 100/min, 1000/hour
        code = cli.main(
            contract(
                server.url,
                "--max-requests",
                "80",
                "--select",
                *MIXED,
                "--junit-xml",
                str(report),
            )
        )
        refused = [
            e for e in server.get("/_sandbox/requests").json()["requests"] if e["status"] == 429
        ]
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert " 0 failed, 0 errors" in out and "0 inconclusive" in out
    assert not refused  # paced by the headers: the key never ran dry
    # The plan comes first, on stderr: requests, the key's budget, the pace, the hour.
    assert err.index("plan: ~") < err.index("[  1/")
    assert "left this minute (X-RateLimit-Remaining; Limit 100)" in err and "hour: fits" in err
    assert "sized from 25 by --max-requests 80" in err
    estimated = int(PLAN_REQUESTS.search(err).group(1))
    sent = int(SENT.search(out).group(1))
    assert sent <= 80
    assert abs(estimated - sent) <= 0.15 * sent, (estimated, sent)
    assert re.search(r"ETA \d+", err)
    assert ET.parse(report).getroot().find("testsuite").get("failures") == "0"


def test_thirty_a_minute_run_sized_by_max_requests_passes(capsys):
    with ServerProcess("--seed", "0", "--rate-limit", "30/min,300/hour", host=ALIAS) as server:
        code = cli.main(
            contract(server.url, "--max-requests", "26", "--select", "semantics:predictChurn")
        )
        statuses = [e["status"] for e in server.get("/_sandbox/requests").json()["requests"]]
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "0 failed" in out and "0 inconclusive" in out
    assert 429 not in statuses
    assert "27/min" in err  # 30 a minute, 10 % left to other clients
    assert int(SENT.search(out).group(1)) <= 26


def test_run_that_cannot_fit_the_hour_exits_3_with_inconclusive_checks(tmp_path, capsys):
    report = tmp_path / "qa.xml"
    # An hour nearly spent (20 left) and a minute with room: the hour is the limit.
    clear_of_the_hour_boundary()
    with ServerProcess("--seed", "0", "--rate-limit", "100/min,20/hour", host=ALIAS) as server:
        code = cli.main(
            contract(
                server.url,
                "--select",
                "semantics:predictChurn",
                "semantics:getIndustryBenchmarks",
                "--junit-xml",
                str(report),
            )
        )
    out, err = capsys.readouterr()
    assert code == 3, out + err
    assert "hour: DOES NOT FIT" in err and "--max-requests" in err
    assert " 0 failed, 0 errors" in out
    inconclusive = int(re.search(r"(\d+) inconclusive", out).group(1))
    assert inconclusive >= 1
    assert "INCONCLUSIVE" in out and "X-RateLimit-Remaining" in out
    suite = ET.parse(report).getroot().find("testsuite")
    skipped = [c.find("skipped") for c in suite.findall("testcase")]
    reasons = [s.get("message") for s in skipped if s is not None]
    assert suite.get("failures") == "0" and len(reasons) == inconclusive
    assert all(r.startswith("inconclusive: ") for r in reasons)


def test_429s_past_the_wait_budget_are_inconclusive_with_the_429s_curl(capsys):
    # A target without X-RateLimit-* headers, whose hour is spent after three requests:
    # its 429s say "retry in most of an hour", past any wait budget.
    app = behind(mutants.no_rate_limit_headers(), "100/min,2/hour")
    clear_of_the_hour_boundary()
    with SandboxServer(app=app, host=ALIAS) as server:
        code = cli.main(
            contract(
                server.url,
                *("--rate", "0", "--max-wait", "10"),
                *("--select", "deterministic_answers:predictLtv"),
            )
        )
    out, _ = capsys.readouterr()
    assert code == 3, out
    assert "0 failed" in out and "1 inconclusive" in out
    assert "429 with Retry-After" in out
    assert f"last 429: curl -sS -X POST http://{ALIAS}:" in out


def test_throttling_does_not_hide_drift(capsys):
    # The mutant's answers break the schema from the first request; the hour runs out
    # during the exploration. The failure seen before is reported, not "inconclusive".
    app = behind(mutants.churn_out_of_range(), "100/min,16/hour")
    clear_of_the_hour_boundary()
    with SandboxServer(app=app, host=ALIAS) as server:
        code = cli.main(contract(server.url, "--select", "schema:predictChurn"))
    out, _ = capsys.readouterr()
    assert code == 1, out
    assert "schema / response_schema_conformance / predictChurn" in out
    assert re.search(r"[1-9]\d* inconclusive", out)  # the rest of the exploration


def test_mutant_behind_thirty_a_minute_is_still_caught(capsys):
    app = behind(mutants.wrong_key_403(), "30/min,300/hour")
    with SandboxServer(app=app, host=ALIAS) as server:
        code = cli.main(
            contract(
                server.url,
                "--max-requests",
                "20",
                "--select",
                "unauthenticated_is_401:predictChurn",
                "documented_test_customers",
            )
        )
    out, _ = capsys.readouterr()
    assert code == 1, out
    assert "expected: 401 INVALID_API_KEY for a wrong key" in out and "0 inconclusive" in out


def test_an_injected_429_is_judged_not_waited(capsys):
    with SandboxServer(host=ALIAS) as server:
        rule = {"fault": 429, "match": {"path": "/api/insights/benchmarks/*"}}
        with server.fault(**rule):
            code = cli.main(contract(server.url, "--select", "benchmark_percentiles_ordered"))
    out, _ = capsys.readouterr()
    assert code == 1, out
    assert "expected: 200 for the retail benchmarks" in out and "waited" not in out


def test_semantic_estimates_are_exact():
    with SandboxServer(seed=0) as server:
        options = Options.build(base_url=server.url, api_key=server.api_key, seed=1, max_examples=4)
        target = Target(options)
        for item in REGISTRY.checks.values():
            if item.layer != "semantics":
                continue
            for operation in item.operations:
                before = target.session.sent
                runner.run_one(target, item, operation)
                expected = plan.estimate([(item, operation)], options) - 1  # no probe here
                assert target.session.sent - before == expected, (item.name, operation)


def test_max_requests_is_a_hard_cap():
    with SandboxServer(host=ALIAS) as server:
        options = Options.build(
            base_url=server.url,
            api_key=server.api_key,
            seed=1,
            max_requests=7,
            select=("semantics:analyzeCustomer",),
        )
        results, target = runner.run(options)
    assert target.session.sent == 7
    stopped = [r for r in results if r.outcome == runner.INCONCLUSIVE]
    assert stopped and all("--max-requests 7 reached" in r.message for r in stopped)
    assert not [r for r in results if r.outcome in (runner.FAILED, runner.ERROR)]


def test_pacer_follows_the_headers():
    now = 1_000_000.0
    pacer = Pacer(None, REMOTE_DEFAULT_RATE, headroom=0.10, max_wait=30, clock=lambda: now)
    assert pacer.current_interval() == 60 / REMOTE_DEFAULT_RATE  # no headers seen yet
    exchange = Exchange("GET", "http://h/api/x", {}, None, 200, "")
    headers = {"X-RateLimit-Limit": "30", "X-RateLimit-Remaining": "20", "X-RateLimit-Reset": "0"}
    pacer.observe("k", {**headers, "X-RateLimit-Reset": str(int(now) + 20)}, exchange)
    assert pacer.current_interval() == 0  # headers, and no --rate bound
    pacer.wait("k")
    assert pacer.waited == 0 and pacer.windows["k"].remaining == 19
    # Down to the headroom (3 of 30) with the window ending at once: wait for it.
    waits = []
    pacer.on_wait = lambda seconds, why: waits.append(why)
    pacer.observe(
        "k",
        {**headers, "X-RateLimit-Remaining": "3", "X-RateLimit-Reset": str(int(now))},
        exchange,
    )
    pacer.wait("k")
    assert waits and "headroom" in waits[0]
    # Down to the headroom with the window ending in an hour: not waited, inconclusive.
    pacer.observe(
        "k",
        {**headers, "X-RateLimit-Remaining": "2", "X-RateLimit-Reset": str(int(now) + 3000)},
        exchange,
    )
    with pytest.raises(Throttled, match="--max-wait 30s"):
        pacer.wait("k")
    pacer.wait("another key")  # each key has its own window


def test_only_the_limits_own_429_is_throttling():
    def answer(status: int, **headers: str) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        return response

    assert throttle_pause(answer(429, **{"Retry-After": "7", "X-RateLimit-Remaining": "0"})) == 7
    assert throttle_pause(answer(429, **{"Retry-After": "7"})) == 7
    assert throttle_pause(answer(429, **{"Retry-After": "soon"})) is None
    assert throttle_pause(answer(429, **{"Retry-After": "7", "X-RateLimit-Remaining": "5"})) is None
    injected = {"Retry-After": "7", "X-Sandbox-Fault-Injected": "429; source=header"}
    assert throttle_pause(answer(429, **injected)) is None
    assert throttle_pause(answer(503, **{"Retry-After": "7"})) is None


def test_plan_sizes_examples_to_the_cap_and_reads_the_hour():
    options = Options.build(base_url="http://x.example", api_key="k", seed=1)
    pairs = runner.selected(options)
    full = plan.estimate(pairs, options)
    sized, fits = plan.size_to(pairs, options, 300)
    assert fits and sized.max_examples < 25 and plan.estimate(pairs, sized) <= 300 < full
    _, fits = plan.size_to(pairs, options, 20)
    assert not fits
    hour = plan.Plan(full, len(pairs), options, Window(100, 40, time.time() + 1800))
    assert hour.hour_reported and not hour.fits_hour and "DOES NOT FIT" in hour.describe()
    minute = plan.Plan(full, len(pairs), options, Window(100, 99, time.time() + 30))
    assert not minute.hour_reported and minute.per_minute == 90
    assert "documented 10x" in minute.describe()


def test_help_documents_exit_code_3(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "3  no drift found, but some checks are inconclusive" in capsys.readouterr().out
