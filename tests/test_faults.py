"""Fault decisions without a server: rules, matching, times, seeded draws, latency."""

from __future__ import annotations

import pytest

from sandbox.fault_rules import (
    FaultRuleError,
    load_magic_fault_customers,
    load_rules_file,
    parse_rule_documents,
    validate_rule,
)
from sandbox.faults import FaultEngine, RequestFacts
from sandbox.latency import LatencySyntaxError, parse_latency
from sandbox.resources import fixtures_dir
from sandbox.store.counters import MemoryCounters


def facts(**changes) -> RequestFacts:
    base = {
        "method": "POST",
        "path": "/api/intelligence/analyze",
        "api_key": "qpk_test_sandbox",
        "tenant": "linda_quilting",
        "customer_id": "cust_1",
    }
    return RequestFacts(**{**base, **changes})


def engine(seed: int = 0, **kw) -> FaultEngine:
    magic = load_magic_fault_customers(fixtures_dir() / "faults.yaml")
    return FaultEngine(MemoryCounters(), seed=seed, magic=magic, **kw)


def kinds(eng: FaultEngine, n: int, **changes) -> list[str | None]:
    out = []
    for _ in range(n):
        fault = eng.decide(facts(**changes)).fault
        out.append(fault.kind if fault else None)
    return out


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ({"fault": "teapot"}, "/fault"),
        ({"fault": 503, "times": 0}, "/times"),
        ({"fault": 503, "probability": 1.5}, "/probability"),
        ({"fault": 503, "match": {"colour": "red"}}, "/match"),
        ({"fault": 503, "extra": 1}, ""),
        ({"latency": "fast"}, "/latency"),
        ({"times": 3}, ""),
        ({"fault": 500, "retry_after": 5}, "/retry_after"),
        ({"fault": "reset", "code": "X"}, "/code"),
        ({"fault": 503, "hang_seconds": 3}, "/hang_seconds"),
        ({"id": "has spaces", "fault": 500}, "/id"),
        ([1], ""),
    ],
)
def test_bad_rules_name_the_field(rule, path):
    problems = validate_rule(rule)
    assert problems, rule
    assert path in {p["path"] for p in problems}


def test_rule_file_errors_point_into_the_list(tmp_path):
    bad = tmp_path / "faults.yaml"
    bad.write_text("- fault: 503\n- fault: 999\n")
    with pytest.raises(FaultRuleError, match=r"faults.yaml: /1/fault") as caught:
        load_rules_file(bad)
    assert caught.value.errors[0]["path"] == "/1/fault"
    with pytest.raises(FaultRuleError, match="cannot read"):
        load_rules_file(tmp_path / "missing.yaml")
    assert parse_rule_documents({"rules": [{"fault": "hang"}]}) == [{"fault": "hang"}]


def test_times_fires_exactly_n_times_then_never():
    eng = engine()
    [stored] = eng.add_rules([{"fault": 503, "times": 3}])
    assert stored["id"] == "rule-1" and stored["remaining"] == 3
    assert kinds(eng, 5) == ["503", "503", "503", None, None]
    [listed] = eng.list_rules()
    assert (listed["remaining"], listed["fired"]) == (0, 3)


def test_matching_on_every_field():
    eng = engine()
    eng.add_rules(
        [
            {
                "fault": 500,
                "match": {
                    "method": "post",
                    "path": "/api/intelligence/*",
                    "customer_id": "vip_*",
                    "tenant": "linda_quilting",
                    "key": "qpk_test_sandbox",
                },
            }
        ]
    )
    assert kinds(eng, 1, customer_id="vip_7") == ["500"]
    for changes in [
        {"method": "GET", "customer_id": "vip_7"},
        {"path": "/api/data/ingest_orders", "customer_id": "vip_7"},
        {"customer_id": "cust_7"},
        {"customer_id": None},
        {"tenant": "acme_outdoor", "customer_id": "vip_7"},
        {"api_key": "test_key_12345", "customer_id": "vip_7"},
    ]:
        assert kinds(eng, 1, **changes) == [None], changes


def test_first_firing_rule_wins_and_header_skips_rules():
    eng = engine()
    eng.add_rules([{"fault": 500, "times": 1}, {"fault": 503}])
    assert kinds(eng, 3) == ["500", "503", "503"]
    eng.clear()
    eng.add_rules([{"fault": 500, "times": 2}])
    assert kinds(eng, 1, fault_header="reset") == ["reset"]
    assert eng.list_rules()[0]["remaining"] == 2  # the header used up nothing


def test_seeded_probability_replays_and_depends_on_the_seed():
    def run(seed: int) -> list[str | None]:
        eng = engine(seed)
        eng.add_rules([{"id": "coin", "fault": 503, "probability": 0.5}])
        return kinds(eng, 40)

    first = run(3)
    assert first == run(3)
    assert first != run(4)
    assert 5 < first.count("503") < 35


def test_rule_seed_overrides_the_global_seed():
    def run(seed: int) -> list[str | None]:
        eng = engine(seed)
        eng.add_rules([{"id": "coin", "fault": 503, "probability": 0.5, "seed": 99}])
        return kinds(eng, 20)

    assert run(1) == run(2)


def test_probability_and_times_together():
    eng = engine(5)
    eng.add_rules([{"fault": 500, "probability": 0.5, "times": 2}])
    assert kinds(eng, 60).count("500") == 2


def test_latency_profiles():
    assert parse_latency("250").seconds(0.3, 120) == 0.25
    assert parse_latency(250).seconds(0.3, 120) == 0.25
    uniform = parse_latency("20-80")
    assert uniform.seconds(0.0, 120) == 0.02 and uniform.seconds(0.5, 120) == 0.05
    lognormal = parse_latency("p50=80, p99=400")
    assert lognormal.seconds(0.5, 120) == pytest.approx(0.08)
    assert lognormal.seconds(0.99, 120) == pytest.approx(0.4)
    assert lognormal.seconds(1 - 1e-15, 0.5) == 0.5  # capped
    assert parse_latency("5000").seconds(0.5, 2.0) == 2.0
    for bad in ["", "fast", "80-20", "p50=0,p99=10", "p50=100,p99=50", "-5", True]:
        with pytest.raises(LatencySyntaxError):
            parse_latency(bad)


def test_latency_precedence_header_rule_customer_global():
    eng = engine(latency=parse_latency("10"))
    assert eng.decide(facts()).latency_seconds == 0.01
    assert eng.decide(facts(customer_id="test_customer_slow")).latency_seconds == 3.0
    eng.add_rules([{"latency": 200, "match": {"customer_id": "test_customer_slow"}}])
    decision = eng.decide(facts(customer_id="test_customer_slow"))
    assert (decision.latency_seconds, decision.latency_source) == (0.2, "rule:rule-1")
    decision = eng.decide(facts(customer_id="test_customer_slow", latency_header="5"))
    assert (decision.latency_seconds, decision.latency_source) == (0.005, "header")


def test_bad_headers_are_value_errors():
    eng = engine()
    with pytest.raises(ValueError, match="X-Sandbox-Fault"):
        eng.decide(facts(fault_header="418"))
    with pytest.raises(ValueError, match="latency"):
        eng.decide(facts(latency_header="soon"))


def test_magic_customers():
    eng = engine()
    error = eng.decide(facts(customer_id="test_customer_error_500")).fault
    assert (error.kind, error.source) == ("500", "customer:test_customer_error_500")
    unavailable = eng.decide(facts(customer_id="test_customer_unavailable")).fault
    assert (unavailable.kind, unavailable.retry_after) == ("503", 2)
    timeout = eng.decide(facts(customer_id="test_customer_timeout"))
    assert timeout.fault is None and timeout.latency_seconds == 35.0
    capped = engine(hold_cap_seconds=2.0).decide(facts(customer_id="test_customer_timeout"))
    assert capped.latency_seconds == 2.0


def test_flaky_customer_fails_twice_per_tenant_and_reset_restores_it():
    eng = engine()
    flaky = {"customer_id": "test_customer_flaky"}
    assert kinds(eng, 3, **flaky) == ["503", "503", None]
    assert kinds(eng, 3, tenant="acme_outdoor", **flaky) == ["503", "503", None]
    eng.reset_customers("linda_quilting")
    assert kinds(eng, 1, **flaky) == ["503"]
    assert kinds(eng, 1, tenant="acme_outdoor", **flaky) == [None]
    eng.clear()
    assert kinds(eng, 1, tenant="acme_outdoor", **flaky) == ["503"]


def test_hang_is_capped():
    eng = engine(hold_cap_seconds=5)
    eng.add_rules([{"fault": "hang", "hang_seconds": 60}, {"fault": "hang"}])
    assert eng.hang_seconds(eng.decide(facts()).fault) == 5
