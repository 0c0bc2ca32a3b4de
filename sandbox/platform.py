"""The platform's operations as plain functions of (tenant, request body) -> response body.

This is where the customer model, the store and the clock meet. No Flask: blueprints
parse and serialise, this module decides. Bodies arrive already validated against the
contract, so only what the schema cannot say is checked here.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sandbox.clock import Clock, days_between, parse_timestamp
from sandbox.personas import generation, insights
from sandbox.personas.drawing import DrawnHistory
from sandbox.personas.history import History, InteractionFact, OrderFact, OrderItem
from sandbox.personas.model import CustomerModel
from sandbox.store.base import Store

STATE_FORMAT = "quimbi-sandbox-state/1"


def cents(amount: float | int) -> int:
    """Money as integer cents, so sums of ingested totals stay exact."""
    exact = Decimal(str(amount)) * 100
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def normalise_order(order: dict[str, Any], customer_id: str) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "order_id": order["order_id"],
        "order_date": parse_timestamp(order["order_date"]).isoformat(),
        "total_cents": cents(order["total_price"]),
        "items": [
            {
                "product_id": item["product_id"],
                "product_name": item.get("product_name", ""),
                "category": item.get("category", ""),
                "quantity": item["quantity"],
                "price_cents": cents(item["price"]),
            }
            for item in order.get("items") or []
        ],
    }


def order_as_api(order: dict[str, Any]) -> dict[str, Any]:
    """A stored order back in the shape ingest_orders takes."""
    return {
        "customer_id": order["customer_id"],
        "order_id": order["order_id"],
        "order_date": order["order_date"],
        "total_price": order["total_cents"] / 100,
        "items": [
            {
                "product_id": item["product_id"],
                "product_name": item["product_name"],
                "category": item["category"],
                "quantity": item["quantity"],
                "price": item["price_cents"] / 100,
            }
            for item in order["items"]
        ],
    }


def normalise_interaction(
    interaction: dict[str, Any], customer_id: str, type_field: str
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "interaction_type": interaction[type_field],
        "timestamp": parse_timestamp(interaction["timestamp"]).isoformat(),
        "channel": interaction.get("channel", ""),
        "metadata": interaction.get("metadata") or {},
    }


class Platform:
    def __init__(
        self,
        model: CustomerModel,
        store: Store,
        clock: Clock,
        benchmarks: dict[str, dict[str, Any]],
        tenant_industries: dict[str, str],
    ) -> None:
        self.model = model
        self.store = store
        self.clock = clock
        self.benchmarks = benchmarks
        self.tenant_industries = tenant_industries

    # Histories: generated, plus what the tenant ingested, plus per-request context.

    def _facts(
        self, orders: Iterable[dict[str, Any]], interactions: Iterable[dict[str, Any]]
    ) -> tuple[tuple[OrderFact, ...], tuple[InteractionFact, ...]]:
        now = self.clock.now()
        order_facts = tuple(
            OrderFact(
                order_id=order["order_id"],
                days_ago=days_between(parse_timestamp(order["order_date"]), now),
                total_cents=order["total_cents"],
                items=tuple(OrderItem(**item) for item in order["items"]),
            )
            for order in orders
        )
        interaction_facts = tuple(
            InteractionFact(
                interaction["interaction_type"],
                days_between(parse_timestamp(interaction["timestamp"]), now),
                interaction["channel"],
            )
            for interaction in interactions
        )
        return order_facts, interaction_facts

    def history(
        self, tenant: str, customer_id: str, context: dict[str, Any] | None = None
    ) -> History | DrawnHistory:
        base = self.model.history(
            tenant, customer_id, known=self.store.is_known(tenant, customer_id)
        ).aged(self.clock.elapsed_days())
        orders = list(self.store.orders_for(tenant, customer_id))
        interactions = list(self.store.interactions_for(tenant, customer_id))
        if context:
            orders += [normalise_order(o, customer_id) for o in context.get("orders") or []]
            interactions += [
                normalise_interaction(i, customer_id, "type")
                for i in context.get("interactions") or []
            ]
        if not orders and not interactions:
            return base  # a generated customer the tenant never mentioned: no clock reading
        return base.with_facts(*self._facts(orders, interactions))

    # The nine operations.

    def analyze(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        history = self.history(tenant, body["customer_id"], body.get("context"))
        return self.model.analysis(history)

    def predict_churn(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.model.churn_prediction(self.history(tenant, body["customer_id"]))

    def predict_ltv(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        history = self.history(tenant, body["customer_id"])
        # JSON Schema counts 12.0 as an integer; the model wants a real int.
        return self.model.ltv_forecast(history, int(body.get("horizon_months", 12)))

    def generate_message(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        return generation.generate_message(body["customer_profile"], body["context"])

    def recommend_actions(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        return generation.recommend_actions(
            body["customer_profile"], body["scenario"], body.get("context") or {}
        )

    def ingest_orders(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        records = [normalise_order(o, o["customer_id"]) for o in body["orders"]]
        stored = self.store.add_orders(tenant, records)
        updated = sorted({order["customer_id"] for order in stored})
        return {
            "ingested_count": len(stored),
            "status": "success",
            "customer_profiles_updated": updated,
        }

    def ingest_interactions(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        records = [
            normalise_interaction(i, i["customer_id"], "interaction_type")
            for i in body["interactions"]
        ]
        return {"ingested_count": self.store.add_interactions(tenant, records), "status": "success"}

    # State as a portable document (GET/PUT /_sandbox/state, --state FILE).

    def export_state(self, tenant: str | None = None) -> dict[str, Any]:
        tenants = [tenant] if tenant is not None else sorted(self.store.tenants())
        document: dict[str, Any] = {"format": STATE_FORMAT, "tenants": {}}
        for name in tenants:
            data = self.store.export_tenant(name)
            document["tenants"][name] = {
                "orders": [order_as_api(order) for order in data["orders"]],
                "interactions": data["interactions"],
            }
        if tenant is None:
            document["clock"] = self.clock.state().to_dict()
        return document

    def import_state(self, document: dict[str, Any], tenant: str | None = None) -> dict[str, int]:
        """Replace state with ``document`` (already schema-valid); one tenant or all."""
        tenants = document["tenants"]
        if tenant is not None:
            tenants = {tenant: tenants.get(tenant, {})}
        else:
            for stale in self.store.tenants() - set(tenants):
                self.store.reset(stale)
        counts = {"tenants": 0, "orders": 0, "interactions": 0}
        for name, data in tenants.items():
            orders = [normalise_order(o, o["customer_id"]) for o in data.get("orders", [])]
            interactions = [
                normalise_interaction(i, i["customer_id"], "interaction_type")
                for i in data.get("interactions", [])
            ]
            self.store.replace_tenant(name, orders, interactions)
            counts["tenants"] += 1
            counts["orders"] += len(orders)
            counts["interactions"] += len(interactions)
        clock = document.get("clock")
        if tenant is None and clock:
            self.clock.restore(clock)
        return counts

    def industry_benchmarks(self, industry: str) -> dict[str, Any]:
        return insights.benchmarks_for(self.benchmarks, industry)

    def my_position(self, tenant: str) -> dict[str, Any]:
        industry = self.tenant_industries.get(tenant, "retail")
        bench = insights.benchmarks_for(self.benchmarks, industry)
        ids = [cid for cid, magic in self.model.magic.items() if magic.traits is not None]
        if self.model.customers == "open":
            ids += insights.sample_customer_ids(tenant)
        ids += sorted(self.store.known_customers(tenant) - set(ids))
        histories = []
        for customer_id in ids:
            if self.model.exists(tenant, customer_id, known=True):
                histories.append(self.history(tenant, customer_id))
        return insights.position(histories, industry, bench)
