"""Layer 3, state: ingest orders, then read them back, exactly; nothing crosses tenants.

A Hypothesis state machine ingests random orders (totals with 2 decimals) for fresh
customers whose ids carry the run token, re-sends earlier batches, and analyzes.
Its model is kept in integer cents, so "LTV up by exactly the sum" means exactly.
Baselines are read before a customer's first ingestion: a platform may already know an
id (the sandbox generates any id in its open mode) or answer 404 (zero history).
One run of the machine feeds three checks; all of them write, so --read-only skips them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from contract_tests.registry import CheckFailure, CheckSkipped, check, describe
from contract_tests.semantics import success_body
from contract_tests.target import Reply, Target, Throttled

FLOW = "ingestOrders -> analyzeCustomer"
CHECK_NAMES = ("ingest_then_analyze_exact", "reingest_is_idempotent", "tenant_isolation")
# Orders are dated up to ~2 years before this day: in the past for any plausible server
# clock (the sandbox's can be frozen at the documentation's 2024-01-15, and the sandbox
# rejects orders dated in its future).
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
# Order totals in cents: 0.01 to 5,000.00, so every total has exactly 2 decimals.
TOTALS = st.lists(st.integers(min_value=1, max_value=500_000), min_size=1, max_size=4)


@dataclass
class CustomerModel:
    ltv_cents: int  # baseline + everything ingested
    orders: int
    other_tenant: tuple[int, int] | None  # the second tenant's view before any ingestion
    batches: list[list[dict[str, Any]]] = field(default_factory=list)


def view(target: Target, reply: Reply) -> tuple[int, int]:
    """(LTV in cents, order count) from an analysis; a 404 is an empty history."""
    if reply.status == 404:
        return 0, 0
    metrics = success_body(target, "analyzeCustomer", reply)["behavioral_metrics"]
    return round(metrics["lifetime_value"] * 100), metrics["total_orders"]


class IngestionMachine(RuleBasedStateMachine):
    """Bound to a target and a failure sink by :func:`machine_for`."""

    target: Target
    failures: dict[str, CheckFailure | None]

    # Each run of the machine (Hypothesis makes one per example) gets its own number, so
    # no two make the same ids: their address (id(self), as before) is reused once the
    # last one is freed, and a reused order id is a re-ingestion the model did not expect.
    _serials = itertools.count(1)

    def __init__(self) -> None:
        super().__init__()
        self.customers: dict[str, CustomerModel] = {}
        self.counter = 0
        self.serial = next(IngestionMachine._serials)

    def fail(self, name: str, expected: str, actual: Any, reply: Reply) -> None:
        if self.failures.get(name) is None:
            self.failures[name] = CheckFailure(expected, describe(actual), reply.exchange)

    def next_id(self, kind: str) -> str:
        self.counter += 1
        return f"{self.target.run_token}_m{self.serial}_{kind}{self.counter}"

    def analyze(self, customer_id: str, key: str = "default") -> Reply:
        reply = self.target.call(
            "POST", "/api/intelligence/analyze", {"customer_id": customer_id}, key=key
        )
        if reply.status not in (200, 404):
            self.fail("ingest_then_analyze_exact", "200 or 404 from analyze", reply.status, reply)
        return reply

    @initialize(data=st.data())
    def first_customer(self, data: st.DataObject) -> None:
        # Every run ingests at least once, however few steps Hypothesis draws.
        self.add_customer()
        self.ingest(data, data.draw(TOTALS))

    @rule()
    def add_customer(self) -> None:
        customer_id = self.next_id("c")
        ltv, orders = view(self.target, self.analyze(customer_id))
        other = None
        if self.target.options.second_api_key:
            second = self.target.options.second_api_key
            other = view(self.target, self.analyze(customer_id, key=second))
        self.customers[customer_id] = CustomerModel(ltv, orders, other)

    @rule(data=st.data(), totals=TOTALS)
    def ingest(self, data: st.DataObject, totals: list[int]) -> None:
        customer_id = data.draw(st.sampled_from(sorted(self.customers)))
        days = data.draw(st.lists(st.integers(1, 700), min_size=len(totals), max_size=len(totals)))
        batch = [
            {
                "customer_id": customer_id,
                "order_id": self.next_id("o"),
                "order_date": (_EPOCH - timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "total_price": cents / 100,
                "items": [
                    {"product_id": "qk_probe", "quantity": 1, "price": cents / 100},
                ],
            }
            for cents, d in zip(totals, days, strict=True)
        ]
        reply = self.target.call(
            "POST", "/api/data/ingest_orders", {"source": "quimbi_contract", "orders": batch}
        )
        if reply.status != 200:
            self.fail("ingest_then_analyze_exact", "200 from ingest_orders", reply.status, reply)
            return
        body = success_body(self.target, "ingestOrders", reply)
        updated = body["customer_profiles_updated"]
        if body["ingested_count"] != len(batch) or customer_id not in updated:
            self.fail(
                "ingest_then_analyze_exact",
                f"ingested_count {len(batch)} and {customer_id} in customer_profiles_updated",
                body,
                reply,
            )
        model = self.customers[customer_id]
        model.ltv_cents += sum(totals)
        model.orders += len(batch)
        model.batches.append(batch)

    @precondition(lambda self: any(m.batches for m in self.customers.values()))
    @rule(data=st.data())
    def reingest(self, data: st.DataObject) -> None:
        customer_id = data.draw(
            st.sampled_from(sorted(c for c, m in self.customers.items() if m.batches))
        )
        batch = data.draw(st.sampled_from(self.customers[customer_id].batches))
        reply = self.target.call(
            "POST", "/api/data/ingest_orders", {"source": "quimbi_contract", "orders": batch}
        )
        if reply.status != 200:
            self.fail("reingest_is_idempotent", "200 for a repeated batch", reply.status, reply)
            return
        self.check_analysis(customer_id, "reingest_is_idempotent", "after re-sending a batch")

    @rule(data=st.data())
    def analyze_customer(self, data: st.DataObject) -> None:
        customer_id = data.draw(st.sampled_from(sorted(self.customers)))
        self.check_analysis(customer_id, "ingest_then_analyze_exact", "after ingestion")

    @precondition(lambda self: bool(self.target.options.second_api_key))
    @rule(data=st.data())
    def other_tenant_looks(self, data: st.DataObject) -> None:
        self.compare_other_tenant(data.draw(st.sampled_from(sorted(self.customers))))

    def compare_other_tenant(self, customer_id: str) -> None:
        model = self.customers[customer_id]
        reply = self.analyze(customer_id, key=self.target.options.second_api_key)
        seen = view(self.target, reply)
        if seen != model.other_tenant:
            ltv, orders = model.other_tenant or (0, 0)
            self.fail(
                "tenant_isolation",
                f"the second tenant's view of {customer_id} unchanged by the first tenant's"
                f" ingestion: LTV {ltv / 100:.2f}, {orders} orders",
                f"LTV {seen[0] / 100:.2f}, {seen[1]} orders",
                reply,
            )

    def teardown(self) -> None:
        # Whatever the rules drew, every ingested customer is read back once at the end.
        for customer_id, model in self.customers.items():
            if model.batches:
                self.check_analysis(customer_id, "ingest_then_analyze_exact", "after ingestion")
                if self.target.options.second_api_key:
                    self.compare_other_tenant(customer_id)

    def check_analysis(self, customer_id: str, name: str, when: str) -> None:
        model = self.customers[customer_id]
        reply = self.analyze(customer_id)
        ltv, orders = view(self.target, reply)
        if (ltv, orders) != (model.ltv_cents, model.orders):
            self.fail(
                name,
                f"{when}: LTV {model.ltv_cents / 100:.2f} and {model.orders} orders"
                f" for {customer_id} (baseline plus exactly what was ingested)",
                f"LTV {ltv / 100:.2f}, {orders} orders",
                reply,
            )
        # Later comparisons build on what the server says, so one slip is reported once.
        model.ltv_cents, model.orders = ltv, orders


def explore(target: Target) -> dict[str, CheckFailure | Throttled | None]:
    if "stateful" in target.cache:
        return target.cache["stateful"]
    failures: dict[str, CheckFailure | None] = dict.fromkeys(CHECK_NAMES)
    machine = type(
        "BoundIngestionMachine", (IngestionMachine,), {"target": target, "failures": failures}
    )
    settings = target.hypothesis_settings(
        max_examples=max(3, target.options.max_examples // 3),
        stateful_step_count=target.options.stateful_steps,
    )
    try:
        run_state_machine_as_test(hypothesis_seed(target.options.seed)(machine), settings=settings)
    except CheckFailure as failure:  # an unreadable answer ends the run
        failures["ingest_then_analyze_exact"] = failures["ingest_then_analyze_exact"] or failure
    except Throttled as throttled:
        # The failures found before the limit stopped the machine still count.
        failures = {name: failures[name] or throttled for name in CHECK_NAMES}
    target.cache["stateful"] = failures
    return failures


def _stateful_check(name: str, doc: str) -> None:
    def run(target: Target, operation: str) -> None:
        if name == "tenant_isolation" and not target.options.second_api_key:
            raise CheckSkipped("needs --second-api-key (a key of another tenant)")
        failure = explore(target)[name]
        if failure is not None:
            raise failure

    run.__doc__ = doc
    check("stateful", (FLOW,), name=name, writes=True)(run)


_stateful_check(
    "ingest_then_analyze_exact",
    "After ingesting orders, analyze shows LTV up by exactly their sum, orders by their count.",
)
_stateful_check("reingest_is_idempotent", "Re-sending an order_id changes nothing.")
_stateful_check("tenant_isolation", "Another tenant never sees what this tenant ingested.")
