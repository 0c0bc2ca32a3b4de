"""Layer 2, semantics: what the API reference says that a schema cannot.

Each check states one invariant (envelopes and codes, 401 for bad keys, determinism,
agreement between analyze and the predictions, arithmetic, ordering, rate-limit
headers, the documented test customers) and probes it with requests drawn by
Hypothesis where the input space matters. None of them writes data.
"""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import given
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from contract_tests.registry import CheckFailure, check, describe
from contract_tests.target import Reply, Target, Throttled
from sandbox.spec import load_contract

DOCUMENTED_CODES: dict[int, set[str]] = {
    400: {"MALFORMED_JSON"},
    401: {"INVALID_API_KEY"},
    403: {"INSUFFICIENT_PERMISSIONS"},
    404: {"CUSTOMER_NOT_FOUND", "INDUSTRY_NOT_FOUND", "ENDPOINT_NOT_FOUND"},
    405: {"METHOD_NOT_ALLOWED"},
    413: {"PAYLOAD_TOO_LARGE"},
    415: {"UNSUPPORTED_MEDIA_TYPE"},
    422: {"VALIDATION_ERROR"},
    429: {"RATE_LIMIT_EXCEEDED"},
    500: {"INTERNAL_ERROR"},
    503: {"SERVICE_UNAVAILABLE"},
}
DOCUMENTED_CUSTOMERS = ("test_customer_high_ltv", "test_customer_low_ltv", "test_customer_new")
CUSTOMER_OPERATIONS = ("analyzeCustomer", "predictChurn", "predictLtv")
ALL_OPERATIONS = tuple(load_contract().operations)
READ_OPERATIONS = tuple(
    op for op in ALL_OPERATIONS if op not in ("ingestOrders", "ingestInteractions")
)
CONSISTENCY = "analyzeCustomer+predictChurn+predictLtv"
LEVELS = {"low": 0, "medium": 1, "high": 2}
_ID_CHARS = string.ascii_lowercase + string.digits + "_"


def valid_request(target: Target, operation_id: str, customer_id: str) -> tuple[str, str, Any]:
    """A request the contract says must succeed (or 404 for an unknown customer)."""
    method, path = target.path_of(operation_id)
    path = path.replace("{industry}", "retail")
    profile = {"customer_id": customer_id, "churn_risk": 0.42, "lifetime_value": 310.25}
    bodies: dict[str, Any] = {
        "analyzeCustomer": {"customer_id": customer_id},
        "predictChurn": {"customer_id": customer_id},
        "predictLtv": {"customer_id": customer_id, "horizon_months": 12},
        "generateMessage": {
            "customer_profile": profile,
            "context": {"goal": "nurture_lead", "channel": "email"},
        },
        "recommendActions": {"customer_profile": profile, "scenario": "retention_risk"},
        "ingestOrders": {
            "source": "quimbi_contract",
            "orders": [
                {
                    "customer_id": customer_id,
                    "order_id": f"{target.run_token}_probe",
                    "order_date": "2024-01-15T10:30:00Z",
                    "total_price": 10.0,
                }
            ],
        },
        "ingestInteractions": {
            "source": "quimbi_contract",
            "interactions": [
                {
                    "customer_id": customer_id,
                    "interaction_type": "support_ticket",
                    "timestamp": "2024-01-15T10:30:00Z",
                }
            ],
        },
    }
    return method, path, bodies.get(operation_id)


def customer_ids(target: Target) -> st.SearchStrategy[str]:
    """Documented customers and fresh ids that carry the run token."""
    fresh = st.text(_ID_CHARS, min_size=1, max_size=16).map(lambda s: f"{target.run_token}_{s}")
    return st.one_of(st.sampled_from(DOCUMENTED_CUSTOMERS), fresh)


def run_examples(target: Target, strategy: st.SearchStrategy[Any], body: Any, limit: int) -> None:
    """Run ``body(example)`` over ``strategy`` with the run's seed; the first failure ends it."""
    failures: list[CheckFailure] = []

    @hypothesis_seed(target.options.seed)
    @target.hypothesis_settings(max_examples=max(2, min(target.options.max_examples, limit)))
    @given(strategy)
    def run(example: Any) -> None:
        if failures:
            return
        try:
            body(example)
        except CheckFailure as failure:
            failures.append(failure)

    try:
        run()
    except Throttled:
        if not failures:
            raise  # the run was stopped; but a failure seen before still counts
    if failures:
        raise failures[0]


def expect(condition: bool, expected: str, actual: Any, reply: Reply | None) -> None:
    if not condition:
        raise CheckFailure(expected, describe(actual), reply.exchange if reply else None)


def success_body(target: Target, operation_id: str, reply: Reply) -> Any:
    """A 200 body that follows the operation's schema: semantics are only judged on
    answers that can be read (the schema layer reports the rest in detail)."""
    problems = target.contract.validate_response(operation_id, 200, reply.body)
    if reply.body is None or problems:
        raise CheckFailure(
            f"a readable {operation_id} answer (its documented 200 schema)",
            "; ".join(f"{p.path or '/'}: {p.message}" for p in problems[:3]) or reply.text,
            reply.exchange,
        )
    return reply.body


def money_cents(value: Any) -> int:
    return round(float(value) * 100)


def envelope_problem(reply: Reply) -> str | None:
    """Why a non-2xx answer is not the documented envelope, or None."""
    body = reply.body
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return f"{reply.status} with body {describe(reply.text, 200)}"
    error = body["error"]
    if not isinstance(error.get("code"), str) or not isinstance(error.get("message"), str):
        return f"{reply.status} with error {describe(error, 200)} (code/message not strings)"
    if "details" in error and not isinstance(error["details"], dict):
        return f"{reply.status} with details {describe(error['details'], 120)} (not an object)"
    documented = DOCUMENTED_CODES.get(reply.status)
    if documented is None or error["code"] not in documented:
        return f"{reply.status} with code {error['code']!r}"
    return None


_JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


@check("semantics", ALL_OPERATIONS)
def error_envelope(target: Target, operation: str) -> None:
    """Every non-2xx answer is the {"error": {code, message}} envelope with a documented code."""
    method, path, valid = valid_request(target, operation, f"{target.run_token}_env")
    fixed: list[tuple[str, bytes | None, dict[str, str], str | None]] = [
        (path, None, {}, None),  # no key
        (path, None, {}, f"{target.run_token}_not_a_key"),
        ("/api/no_such_endpoint_" + target.run_token, None, {}, "default"),
    ]
    if method == "POST":
        ct = {"Content-Type": "application/json"}
        fixed += [
            (path, b"{", ct, "default"),
            (path, b"[]", ct, "default"),
            (path, b"{}", {"Content-Type": "text/plain"}, "default"),
        ]
    else:
        fixed.append((path.replace("retail", "no_such_industry"), None, {}, "default"))

    def probe(path_: str, raw: bytes | None, headers: dict[str, str], key: str | None) -> None:
        reply = target.call_raw(method, path_, raw, key=key, headers=headers)
        if reply.status >= 300:
            problem = envelope_problem(reply)
            expect(problem is None, "the error envelope with a documented code", problem, reply)

    for item in fixed:
        probe(*item)
    if method == "POST":

        def junk(value: Any) -> None:
            probe(path, json.dumps(value).encode(), {"Content-Type": "application/json"}, "default")

        run_examples(target, _JUNK, junk, limit=10)


@check("semantics", ALL_OPERATIONS)
def unauthenticated_is_401(target: Target, operation: str) -> None:
    """No key, and a wrong key, are each answered 401 INVALID_API_KEY."""
    method, path, body = valid_request(target, operation, "test_customer_high_ltv")
    for label, key in (("no key", None), ("a wrong key", f"qpk_test_{target.run_token}_wrong")):
        reply = target.call(method, path, body, key=key)
        code = reply.body.get("error", {}).get("code") if isinstance(reply.body, dict) else None
        expect(
            reply.status == 401 and code == "INVALID_API_KEY",
            f"401 INVALID_API_KEY for {label}",
            f"{reply.status} {code or describe(reply.text, 120)}",
            reply,
        )


@check("semantics", READ_OPERATIONS)
def deterministic_answers(target: Target, operation: str) -> None:
    """The same request twice gives the same body (generated messages excepted when the
    target marks them Cache-Control: no-store)."""
    method, path, body = valid_request(target, operation, "test_customer_high_ltv")
    first = target.call(method, path, body)
    second = target.call(method, path, body)
    cache_control = second.headers.get("Cache-Control", "").lower()
    if operation == "generateMessage" and ("no-store" in cache_control):
        return
    if first.status == second.status == 200:
        expect(
            first.body == second.body,
            "the same body for the same request",
            f"first {describe(first.body, 200)} then {describe(second.body, 200)}",
            second,
        )


def _customer_answers(target: Target, customer_id: str) -> dict[str, Reply]:
    answers = {}
    for operation in CUSTOMER_OPERATIONS:
        method, path, body = valid_request(target, operation, customer_id)
        answers[operation] = target.call(method, path, body)
    return answers


@check("semantics", (CONSISTENCY,))
def intelligence_consistency(target: Target, operation: str) -> None:
    """analyze, predict/churn and predict/ltv (12 months) agree about the same customer."""

    def compare(customer_id: str) -> None:
        answers = _customer_answers(target, customer_id)
        statuses = {op: reply.status for op, reply in answers.items()}
        expect(
            len(set(statuses.values())) == 1,
            f"the same status from all three for {customer_id}",
            statuses,
            answers["predictChurn"],
        )
        if statuses["analyzeCustomer"] != 200:
            return
        analysis, churn, ltv = (success_body(target, op, answers[op]) for op in CUSTOMER_OPERATIONS)
        pairs = [
            ("churn_risk", analysis["predictions"]["churn_risk"], churn["churn_risk_score"]),
            ("risk level", analysis["predictions"]["churn_risk_level"], churn["risk_level"]),
            ("ltv_12mo", analysis["predictions"]["ltv_12mo"], ltv["forecasted_ltv"]),
            (
                "lifetime_value",
                analysis["behavioral_metrics"]["lifetime_value"],
                ltv["current_ltv"],
            ),
        ]
        for name, from_analyze, from_prediction in pairs:
            expect(
                from_analyze == from_prediction,
                f"analyze's {name} equal to the prediction's for {customer_id}",
                f"analyze {from_analyze!r}, prediction {from_prediction!r}",
                answers["predictChurn"] if "risk" in name else answers["predictLtv"],
            )

    for customer_id in DOCUMENTED_CUSTOMERS:
        compare(customer_id)
    run_examples(target, customer_ids(target), compare, limit=8)


@check("semantics", ("predictChurn",))
def churn_level_thresholds(target: Target, operation: str) -> None:
    """Risk levels rise with the score: a higher score never has a lower level."""
    seen: list[tuple[float, str, Reply]] = []

    def observe(customer_id: str) -> None:
        method, path, body = valid_request(target, "predictChurn", customer_id)
        reply = target.call(method, path, body)
        if reply.status != 200:
            return
        body = success_body(target, "predictChurn", reply)
        score, level = body["churn_risk_score"], body["risk_level"]
        for other_score, other_level, _ in seen:
            inverted = (score - other_score) * (LEVELS[level] - LEVELS[other_level]) < 0
            expect(
                not inverted,
                "risk levels ordered like scores (low < medium < high)",
                f"score {score} is {level!r} but score {other_score} is {other_level!r}",
                reply,
            )
        seen.append((score, level, reply))

    for customer_id in DOCUMENTED_CUSTOMERS:
        observe(customer_id)
    run_examples(target, customer_ids(target), observe, limit=12)


@check("semantics", ("analyzeCustomer",))
def metrics_arithmetic(target: Target, operation: str) -> None:
    """avg_order_value = lifetime_value / total_orders (to the cent); no orders, no value;
    the last purchase is within the customer's tenure."""

    def verify(customer_id: str) -> None:
        method, path, body = valid_request(target, "analyzeCustomer", customer_id)
        reply = target.call(method, path, body)
        if reply.status != 200:
            return
        metrics = success_body(target, "analyzeCustomer", reply)["behavioral_metrics"]
        ltv, orders, aov = (
            metrics["lifetime_value"],
            metrics["total_orders"],
            metrics["avg_order_value"],
        )
        if orders == 0:
            expect(ltv == 0 and aov == 0, "LTV and AOV 0 without orders", metrics, reply)
        else:
            expect(
                abs(money_cents(aov) - money_cents(ltv) / orders) <= 1,
                "avg_order_value = lifetime_value / total_orders (±0.01)",
                metrics,
                reply,
            )
        expect(
            metrics["days_since_last_purchase"] <= metrics["customer_tenure_days"],
            "days_since_last_purchase <= customer_tenure_days",
            metrics,
            reply,
        )

    for customer_id in DOCUMENTED_CUSTOMERS:
        verify(customer_id)
    run_examples(target, customer_ids(target), verify, limit=8)


@check("semantics", ("predictLtv",))
def ltv_interval_contains_forecast(target: Target, operation: str) -> None:
    """lower <= forecasted_ltv <= upper for every horizon, and the horizon is echoed."""

    def verify(example: tuple[str, int]) -> None:
        customer_id, horizon = example
        method, path, _ = valid_request(target, "predictLtv", customer_id)
        reply = target.call(method, path, {"customer_id": customer_id, "horizon_months": horizon})
        if reply.status != 200:
            return
        body = success_body(target, "predictLtv", reply)
        interval = body["confidence_interval"]
        expect(
            interval["lower"] <= body["forecasted_ltv"] <= interval["upper"],
            "confidence_interval.lower <= forecasted_ltv <= upper",
            {"forecasted_ltv": body["forecasted_ltv"], **interval},
            reply,
        )
        expect(body["horizon_months"] == horizon, f"horizon_months {horizon}", body, reply)

    run_examples(target, st.tuples(customer_ids(target), st.integers(1, 36)), verify, limit=10)


@check("semantics", ("getIndustryBenchmarks",))
def benchmark_percentiles_ordered(target: Target, operation: str) -> None:
    """p25 <= p50 <= p75 for LTV and churn; retail (the documented example) exists."""
    for industry in ("retail", "ecommerce", "saas"):
        reply = target.call("GET", f"/api/insights/benchmarks/{industry}")
        if industry == "retail":
            expect(reply.status == 200, "200 for the retail benchmarks", reply.status, reply)
        if reply.status != 200:
            continue
        for name in ("ltv_percentiles", "churn_percentiles"):
            p = success_body(target, "getIndustryBenchmarks", reply)[name]
            expect(p["p25"] <= p["p50"] <= p["p75"], f"{name} p25 <= p50 <= p75", p, reply)


@check("semantics", READ_OPERATIONS)
def rate_limit_headers(target: Target, operation: str) -> None:
    """X-RateLimit-Limit/-Remaining/-Reset on every answer; Remaining goes down."""
    method, path, body = valid_request(target, operation, "test_customer_high_ltv")
    replies = [target.call(method, path, body) for _ in range(2)]
    values = []
    for reply in replies:
        found = {}
        for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
            raw = reply.headers.get(name)
            expect(
                raw is not None and raw.strip().isdigit(),
                f"{name} as an integer",
                f"{name}: {raw!r}",
                reply,
            )
            found[name] = int(raw)
        expect(
            found["X-RateLimit-Remaining"] <= found["X-RateLimit-Limit"],
            "X-RateLimit-Remaining <= X-RateLimit-Limit",
            found,
            reply,
        )
        values.append(found)
    first, second = values
    same_window = first["X-RateLimit-Reset"] == second["X-RateLimit-Reset"]
    expect(
        not same_window or second["X-RateLimit-Remaining"] < first["X-RateLimit-Remaining"],
        "X-RateLimit-Remaining lower on the second request of a window",
        f"{first['X-RateLimit-Remaining']} then {second['X-RateLimit-Remaining']}",
        replies[1],
    )


@check("semantics", ("analyzeCustomer",))
def documented_test_customers(target: Target, operation: str) -> None:
    """The three documented customers exist with their documented character."""
    found = {}
    for customer_id in DOCUMENTED_CUSTOMERS:
        reply = target.call("POST", "/api/intelligence/analyze", {"customer_id": customer_id})
        expect(reply.status == 200, f"200 for {customer_id}", reply.status, reply)
        found[customer_id] = reply
    high, low, new = (success_body(target, "analyzeCustomer", found[c]) for c in found)
    high_ltv = high["behavioral_metrics"]["lifetime_value"]
    low_ltv = low["behavioral_metrics"]["lifetime_value"]
    expect(
        high_ltv > low_ltv,
        "test_customer_high_ltv's LTV above test_customer_low_ltv's",
        f"{high_ltv} vs {low_ltv}",
        found["test_customer_low_ltv"],
    )
    high_churn = high["predictions"]["churn_risk"]
    low_churn = low["predictions"]["churn_risk"]
    expect(
        low_churn > high_churn,
        "test_customer_low_ltv's churn risk above test_customer_high_ltv's",
        f"{low_churn} vs {high_churn}",
        found["test_customer_low_ltv"],
    )
    orders = new["behavioral_metrics"]["total_orders"]
    expect(orders == 0, "0 orders for test_customer_new", orders, found["test_customer_new"])
