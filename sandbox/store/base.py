"""The interface every store implements: what tenants ingested, the journal, the clock.

Implementations: :class:`sandbox.store.memory.MemoryStore` (one process) and
:class:`sandbox.store.redis.RedisStore` (shared by processes and containers). Records
are plain JSON-able dicts normalised by ``sandbox.platform``; stores keep them keyed by
tenant and never interpret them. The same test suite runs against both.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Protocol


class Store(Protocol):
    def add_orders(self, tenant: str, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store, all at once, the orders whose ids are new to the tenant; return those."""

    def add_interactions(self, tenant: str, interactions: list[dict[str, Any]]) -> int:
        """Store all interactions at once; return how many."""

    def orders_for(self, tenant: str, customer_id: str) -> list[dict[str, Any]]: ...

    def interactions_for(self, tenant: str, customer_id: str) -> list[dict[str, Any]]: ...

    def is_known(self, tenant: str, customer_id: str) -> bool:
        """The tenant ingested something for this customer."""

    def known_customers(self, tenant: str) -> set[str]: ...

    def tenants(self) -> set[str]:
        """Tenants that hold any ingested data."""

    def export_tenant(self, tenant: str) -> dict[str, list[dict[str, Any]]]:
        """{"orders": [...], "interactions": [...]} in ingestion order."""

    def replace_tenant(
        self, tenant: str, orders: list[dict[str, Any]], interactions: list[dict[str, Any]]
    ) -> None:
        """Make the tenant's data exactly this, atomically."""

    def reset(self, tenant: str | None = None) -> None:
        """Forget one tenant's data, or everything (data, journal, clock)."""

    def journal_append(self, entry: dict[str, Any], limit: int) -> None:
        """Add a journal entry, keeping only the newest ``limit``."""

    def journal(self) -> list[dict[str, Any]]:
        """Journal entries, oldest first."""

    def get_value(self, name: str) -> dict[str, Any] | None:
        """A small shared document (e.g. the clock's state)."""

    def set_value(self, name: str, value: dict[str, Any]) -> None: ...

    def revision(self, tenant: str) -> Hashable | None:
        """A value that changes whenever the tenant's ingested data changes (and is never
        reused); None when this process cannot know that cheaply (a shared store outside
        a request's view: other processes write too)."""

    def ping(self) -> None:
        """Nothing when the store answers; raises ``errors.StoreUnavailable`` when it
        cannot be reached (as every other method does then). Health asks this."""
