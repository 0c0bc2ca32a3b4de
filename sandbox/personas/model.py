"""The customer model: which customers exist, their histories, and what they look like.

Builds the payloads of the intelligence endpoints from one history per customer, so
analyze, predict/churn and predict/ltv always agree. Pure Python: it raises
:class:`sandbox.errors.CustomerNotFound` and returns plain dicts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.errors import CustomerNotFound
from sandbox.personas import guidance, rules
from sandbox.personas.drawing import DrawnHistory, generate_history, random_traits
from sandbox.personas.history import History, Traits
from sandbox.personas.rng import stable_rng
from sandbox.resources import load_yaml

CUSTOMER_MODES = ("open", "strict")


@dataclass(frozen=True)
class MagicCustomer:
    customer_id: str
    description: str
    traits: Traits | None  # None: the id never exists (404)


def load_magic_customers(path: Path) -> dict[str, MagicCustomer]:
    document = load_yaml(path.read_text(encoding="utf-8")) or {}
    magic = {}
    for customer_id, entry in (document.get("customers") or {}).items():
        try:
            traits = None if entry.get("not_found") else Traits.from_mapping(entry["traits"])
        except ValueError as error:
            raise ValueError(f"{path}: customer {customer_id}: {error}") from error
        magic[customer_id] = MagicCustomer(customer_id, entry.get("description", ""), traits)
    return magic


def money(cents: float) -> float:
    return round(cents / 100, 2)


class _BoundedCache:
    """A thread-safe LRU: generation is cheap but not free, and ids are unbounded."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class CustomerModel:
    def __init__(
        self,
        seed: int,
        magic: Mapping[str, MagicCustomer],
        customers: str = "open",
        # Generated histories are many small objects the cycle collector must scan while
        # they are young: under random-customer load, 4,096 of them made 40-70 ms pauses,
        # 512 keep them under ~10 ms. Test suites ask for far fewer customers than this.
        cache_size: int = 512,
    ) -> None:
        if customers not in CUSTOMER_MODES:
            raise ValueError(f"customers must be one of {CUSTOMER_MODES}")
        self.seed = seed
        self.magic = dict(magic)
        self.customers = customers
        self._cache = _BoundedCache(cache_size)

    def exists(self, tenant: str, customer_id: str, *, known: bool = False) -> bool:
        """``known``: the tenant's own data (ingestion) mentions this customer."""
        magic = self.magic.get(customer_id)
        if magic is not None:
            return magic.traits is not None
        return known or self.customers == "open"

    def traits(self, tenant: str, customer_id: str) -> Traits:
        magic = self.magic.get(customer_id)
        if magic is not None and magic.traits is not None:
            return magic.traits
        return random_traits(stable_rng(self.seed, tenant, customer_id, "traits"))

    def history(
        self, tenant: str, customer_id: str, *, known: bool = False
    ) -> History | DrawnHistory:
        """The generated history; a customer only known from ingestion starts empty."""
        if not self.exists(tenant, customer_id, known=known):
            raise CustomerNotFound(customer_id)
        if customer_id not in self.magic and self.customers == "strict":
            return History(customer_id=customer_id, tenure_days=0)
        key = (tenant, customer_id)
        cached = self._cache.get(key)
        if cached is None:
            cached = generate_history(
                self.seed, tenant, customer_id, self.traits(tenant, customer_id)
            )
            self._cache.put(key, cached)
        return cached

    # Payloads of the intelligence endpoints, all from the same history.

    @staticmethod
    def analysis(history: History) -> dict[str, Any]:
        m = history.metrics
        segs = rules.segments(m)
        churn = rules.churn_risk(m)
        return {
            "customer_id": history.customer_id,
            "archetype": {
                "id": rules.archetype_id(segs),
                "level": rules.archetype_level(m),
                "segments": segs,
            },
            "behavioral_metrics": {
                "lifetime_value": money(m.lifetime_value_cents),
                "total_orders": m.total_orders,
                "avg_order_value": money(m.avg_order_value_cents),
                "days_since_last_purchase": m.days_since_last_purchase,
                "customer_tenure_days": m.customer_tenure_days,
            },
            "predictions": {
                "churn_risk": churn,
                "churn_risk_level": rules.churn_risk_level(churn),
                "ltv_12mo": money(rules.forecast_cents(m, 12, churn)),
            },
            "communication_guidance": guidance.communication_guidance(m, segs, churn),
        }

    @staticmethod
    def churn_prediction(history: History) -> dict[str, Any]:
        m = history.metrics
        churn = rules.churn_risk(m)
        level = rules.churn_risk_level(churn)
        factors = guidance.churn_factors(m)
        return {
            "customer_id": history.customer_id,
            "churn_risk_score": churn,
            "risk_level": level,
            "factors": factors,
            "recommendations": guidance.churn_recommendations(m, level, factors),
        }

    @staticmethod
    def ltv_forecast(history: History, horizon_months: int) -> dict[str, Any]:
        m = history.metrics
        forecast = rules.forecast_cents(m, horizon_months)
        lower, upper = rules.confidence_interval_cents(m, forecast)
        trailing = rules.trailing_spend_cents(history, horizon_months)
        return {
            "customer_id": history.customer_id,
            "horizon_months": horizon_months,
            "forecasted_ltv": money(forecast),
            "confidence_interval": {
                "lower": money(lower),
                "upper": money(upper),
                "confidence_level": 0.95,
            },
            "current_ltv": money(m.lifetime_value_cents),
            "incremental_ltv": money(forecast - trailing),
        }
