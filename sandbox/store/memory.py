"""The in-memory store: per-tenant ingested data, the journal and shared values.

Thread-safe; lives in one process. Implements :class:`sandbox.store.base.Store`.

Orders (what integrators ingest by the hundred thousand) are kept as tuples with
interned repeated strings (customer ids, dates, product fields) and turned back into
the dicts ``sandbox.platform.normalise_order`` makes when read: a stored order costs
a few hundred bytes instead of a kilobyte of dicts.
"""

from __future__ import annotations

import copy
import sys
import threading
from collections import defaultdict, deque
from typing import Any

_ORDER_FIELDS = ("customer_id", "order_id", "order_date", "total_cents")
_ITEM_FIELDS = ("product_id", "product_name", "category", "quantity", "price_cents")
PackedOrder = tuple[Any, ...]


def _interned(value: Any) -> Any:
    return sys.intern(value) if isinstance(value, str) else value


def _pack(order: dict[str, Any]) -> PackedOrder:
    """A normalised order as a tuple; repeated strings shared between orders."""
    items = tuple(tuple(_interned(item[name]) for name in _ITEM_FIELDS) for item in order["items"])
    return (
        _interned(order["customer_id"]),
        order["order_id"],
        _interned(order["order_date"]),
        order["total_cents"],
        items,
    )


def _unpack(packed: PackedOrder) -> dict[str, Any]:
    order = dict(zip(_ORDER_FIELDS, packed, strict=False))
    order["items"] = [dict(zip(_ITEM_FIELDS, item, strict=True)) for item in packed[4]]
    return order


class _TenantState:
    def __init__(self) -> None:
        self.orders: dict[str, PackedOrder] = {}  # order_id -> order, ingestion order
        self.orders_by_customer: dict[str, list[str]] = defaultdict(list)
        self.interactions: list[dict[str, Any]] = []
        self.interactions_by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)


class MemoryStore:
    def __init__(self) -> None:
        self._tenants: dict[str, _TenantState] = {}
        self._journal: deque[dict[str, Any]] = deque()
        self._values: dict[str, dict[str, Any]] = {}
        self._lock = threading.RLock()
        # One counter for all tenants, so a tenant's revision never repeats, even after
        # a reset; a tenant never changed since the last full reset is at the base.
        self._counter = 0
        self._base = 0
        self._revisions: dict[str, int] = {}

    def ping(self) -> None:
        return None  # in this process: reachable whenever the process runs

    def revision(self, tenant: str) -> int:
        return self._revisions.get(tenant, self._base)

    def _changed(self, tenant: str) -> None:
        self._counter += 1
        self._revisions[tenant] = self._counter

    def _tenant(self, tenant: str) -> _TenantState:
        state = self._tenants.get(tenant)
        if state is None:
            state = self._tenants[tenant] = _TenantState()
        return state

    def add_orders(self, tenant: str, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self._lock:
            state = self._tenant(tenant)
            fresh: dict[str, dict[str, Any]] = {}
            for order in orders:
                if order["order_id"] not in state.orders and order["order_id"] not in fresh:
                    fresh[order["order_id"]] = order
            for order_id, order in fresh.items():
                packed = _pack(order)
                state.orders[order_id] = packed
                state.orders_by_customer[packed[0]].append(order_id)
            if fresh:
                self._changed(tenant)
            return list(fresh.values())

    def add_interactions(self, tenant: str, interactions: list[dict[str, Any]]) -> int:
        with self._lock:
            state = self._tenant(tenant)
            for interaction in interactions:
                state.interactions.append(interaction)
                state.interactions_by_customer[interaction["customer_id"]].append(interaction)
            if interactions:
                self._changed(tenant)
            return len(interactions)

    def orders_for(self, tenant: str, customer_id: str) -> list[dict[str, Any]]:
        with self._lock:
            state = self._tenants.get(tenant)
            if state is None:
                return []
            return [_unpack(state.orders[i]) for i in state.orders_by_customer.get(customer_id, ())]

    def interactions_for(self, tenant: str, customer_id: str) -> list[dict[str, Any]]:
        with self._lock:
            state = self._tenants.get(tenant)
            if state is None:
                return []
            return list(state.interactions_by_customer.get(customer_id, ()))

    def is_known(self, tenant: str, customer_id: str) -> bool:
        with self._lock:
            state = self._tenants.get(tenant)
            return state is not None and (
                customer_id in state.orders_by_customer
                or customer_id in state.interactions_by_customer
            )

    def known_customers(self, tenant: str) -> set[str]:
        with self._lock:
            state = self._tenants.get(tenant)
            if state is None:
                return set()
            return set(state.orders_by_customer) | set(state.interactions_by_customer)

    def tenants(self) -> set[str]:
        with self._lock:
            return {
                name for name, state in self._tenants.items() if state.orders or state.interactions
            }

    def export_tenant(self, tenant: str) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            state = self._tenants.get(tenant)
            if state is None:
                return {"orders": [], "interactions": []}
            return {
                "orders": [_unpack(packed) for packed in state.orders.values()],
                "interactions": copy.deepcopy(state.interactions),
            }

    def replace_tenant(
        self, tenant: str, orders: list[dict[str, Any]], interactions: list[dict[str, Any]]
    ) -> None:
        with self._lock:
            self._tenants.pop(tenant, None)
            self._changed(tenant)
            self.add_orders(tenant, orders)
            self.add_interactions(tenant, interactions)

    def reset(self, tenant: str | None = None) -> None:
        with self._lock:
            if tenant is None:
                self._tenants.clear()
                self._journal.clear()
                self._values.clear()
                self._counter += 1
                self._base = self._counter
                self._revisions.clear()
            else:
                self._tenants.pop(tenant, None)
                self._changed(tenant)

    def journal_append(self, entry: dict[str, Any], limit: int) -> None:
        with self._lock:
            self._journal.append(entry)
            while len(self._journal) > limit:
                self._journal.popleft()

    def journal(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._journal)

    def get_value(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            value = self._values.get(name)
            return copy.deepcopy(value) if value is not None else None

    def set_value(self, name: str, value: dict[str, Any]) -> None:
        with self._lock:
            self._values[name] = copy.deepcopy(value)
