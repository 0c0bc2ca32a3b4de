"""A customer's purchase and interaction history: its facts, and the traits it is drawn from.

Traits say what kind of customer this is (how many orders, how recent, how much they
spend, how often they return things); :mod:`sandbox.personas.drawing` turns them into
concrete orders with items from the catalogue. Ages are in days before "today" on the
sandbox clock, so a customer looks the same on every day the sandbox runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from sandbox.personas.rules import Metrics

CADENCES = ("regular", "seasonal", "irregular")


# Facts are named tuples, not frozen dataclasses: a random customer's history is built
# for nearly every request under load, and a frozen dataclass pays a setattr per field
# (a tuple of strings and ints is also left alone by the cycle collector).
class OrderItem(NamedTuple):
    product_id: str
    product_name: str
    category: str
    quantity: int
    price_cents: int


class OrderFact(NamedTuple):
    order_id: str
    days_ago: int
    total_cents: int
    items: tuple[OrderItem, ...] = ()
    returned: bool = False
    discounted: bool = False

    @property
    def categories(self) -> frozenset[str]:
        return frozenset(item.category for item in self.items if item.category)


class InteractionFact(NamedTuple):
    interaction_type: str
    days_ago: int
    channel: str = ""


@dataclass(frozen=True)
class Traits:
    """What kind of customer this is; the history is made to match."""

    orders: int
    aov_cents: int
    recency_days: int
    tenure_days: int
    return_rate: float = 0.0
    discount_share: float = 0.3
    categories: int = 3
    support_tickets_90d: int = 0
    cadence: str = "irregular"
    ltv_cents: int | None = None  # when pinned, order totals add up to exactly this
    # (days ago, total in cents) of every order: a history written out instead of drawn,
    # for a customer whose figures must come out exactly (the API reference's example).
    order_log: tuple[tuple[int, int], ...] | None = None

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Traits:
        converted = dict(values)
        if "order_log" in converted:
            converted["order_log"] = _order_log(converted)
        if "lifetime_value" in converted:
            converted["ltv_cents"] = round(float(converted.pop("lifetime_value")) * 100)
        if "avg_order_value" in converted:
            converted["aov_cents"] = round(float(converted.pop("avg_order_value")) * 100)
        if "aov_cents" not in converted:
            orders = converted.get("orders", 0)
            ltv = converted.get("ltv_cents") or 0
            converted["aov_cents"] = round(ltv / orders) if orders else 0
        return cls(**converted)


def _order_log(traits: dict[str, Any]) -> tuple[tuple[int, int], ...]:
    """The written-out orders, checked against the traits that must state the same
    figures, so the fixture cannot say one thing in its traits and another in its orders."""
    log = tuple(
        sorted(
            ((int(days), round(float(total) * 100)) for days, total in traits["order_log"]),
            reverse=True,
        )
    )
    if not log:
        raise ValueError("order_log lists no orders")
    derived = {
        "orders": len(log),
        "lifetime_value": sum(total for _, total in log),
        "recency_days": log[-1][0],
    }
    for name, value in derived.items():
        stated = traits.get(name)
        scale = 100 if name == "lifetime_value" else 1  # cents, as in the log
        if stated is None or round(float(stated) * scale) != value:
            shown = value / scale if scale != 1 else value
            raise ValueError(f"order_log gives {name} {shown}; the traits say {stated}")
    if log[0][0] > traits.get("tenure_days", log[0][0]):
        raise ValueError(f"order_log's oldest order ({log[0][0]} d) predates tenure_days")
    return log


@dataclass(frozen=True)
class History:
    customer_id: str
    tenure_days: int
    orders: tuple[OrderFact, ...] = ()
    interactions: tuple[InteractionFact, ...] = field(default=())

    @cached_property
    def metrics(self) -> Metrics:
        """The history's metrics, computed once: generated histories are cached and
        asked for again and again (cached_property writes past the frozen dataclass)."""
        from sandbox.personas.rules import compute_metrics  # rules reads histories

        return compute_metrics(self)

    def aged(self, days: int) -> History:
        """The same history seen ``days`` later (the test clock moved past its anchor)."""
        if days == 0:
            return self
        return replace(
            self,
            tenure_days=max(self.tenure_days + days, 0),
            orders=tuple(o._replace(days_ago=max(o.days_ago + days, 0)) for o in self.orders),
            interactions=tuple(
                i._replace(days_ago=max(i.days_ago + days, 0)) for i in self.interactions
            ),
        )

    def with_facts(
        self, orders: tuple[OrderFact, ...] = (), interactions: tuple[InteractionFact, ...] = ()
    ) -> History:
        """This history plus more orders and interactions (ingested or from a request)."""
        if not orders and not interactions:
            return self
        known = {order.order_id for order in self.orders}
        merged_orders = self.orders + tuple(o for o in orders if o.order_id not in known)
        ages = [o.days_ago for o in merged_orders] + [i.days_ago for i in interactions]
        return replace(
            self,
            orders=tuple(sorted(merged_orders, key=lambda o: (-o.days_ago, o.order_id))),
            interactions=self.interactions + interactions,
            tenure_days=max([self.tenure_days, *ages]),
        )
