"""State behind one interface: what tenants ingested. Memory now; Redis shares it."""

from sandbox.store.memory import MemoryStore

__all__ = ["MemoryStore"]
