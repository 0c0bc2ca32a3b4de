"""The in-memory store: per-tenant ingested orders and interactions, thread-safe.

Records are plain dicts as normalised by ``sandbox.platform``; this module only keeps
them, keyed by tenant, and never interprets them.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any


class _TenantState:
    def __init__(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}  # order_id -> order
        self.orders_by_customer: dict[str, list[str]] = defaultdict(list)
        self.interactions_by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)


class MemoryStore:
    def __init__(self) -> None:
        self._tenants: dict[str, _TenantState] = {}
        self._lock = threading.RLock()

    def _tenant(self, tenant: str) -> _TenantState:
        state = self._tenants.get(tenant)
        if state is None:
            state = self._tenants.setdefault(tenant, _TenantState())
        return state

    def add_orders(self, tenant: str, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store the orders whose ids are new to the tenant, all at once; return those."""
        with self._lock:
            state = self._tenant(tenant)
            fresh: dict[str, dict[str, Any]] = {}
            for order in orders:
                if order["order_id"] not in state.orders and order["order_id"] not in fresh:
                    fresh[order["order_id"]] = order
            for order_id, order in fresh.items():
                state.orders[order_id] = order
                state.orders_by_customer[order["customer_id"]].append(order_id)
            return list(fresh.values())

    def add_interactions(self, tenant: str, interactions: list[dict[str, Any]]) -> int:
        with self._lock:
            state = self._tenant(tenant)
            for interaction in interactions:
                state.interactions_by_customer[interaction["customer_id"]].append(interaction)
            return len(interactions)

    def orders_for(self, tenant: str, customer_id: str) -> list[dict[str, Any]]:
        with self._lock:
            state = self._tenants.get(tenant)
            if state is None:
                return []
            return [state.orders[i] for i in state.orders_by_customer.get(customer_id, ())]

    def interactions_for(self, tenant: str, customer_id: str) -> list[dict[str, Any]]:
        with self._lock:
            state = self._tenants.get(tenant)
            if state is None:
                return []
            return list(state.interactions_by_customer.get(customer_id, ()))

    def known_customers(self, tenant: str) -> set[str]:
        with self._lock:
            state = self._tenants.get(tenant)
            if state is None:
                return set()
            return set(state.orders_by_customer) | set(state.interactions_by_customer)

    def is_known(self, tenant: str, customer_id: str) -> bool:
        with self._lock:
            state = self._tenants.get(tenant)
            return state is not None and (
                customer_id in state.orders_by_customer
                or customer_id in state.interactions_by_customer
            )

    def reset(self, tenant: str | None = None) -> None:
        with self._lock:
            if tenant is None:
                self._tenants.clear()
            else:
                self._tenants.pop(tenant, None)
