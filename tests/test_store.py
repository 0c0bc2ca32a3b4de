"""One suite, every store: memory and Redis must behave the same."""

from __future__ import annotations

import threading

import pytest

from sandbox.store.memory import MemoryStore
from sandbox.store.redis import RedisStore


@pytest.fixture(params=["memory", "redis"])
def store(request):
    if request.param == "memory":
        return MemoryStore()
    return RedisStore(request.getfixturevalue("redis_url"))


def order(order_id: str, customer_id: str = "c1", cents: int = 1000) -> dict:
    return {
        "customer_id": customer_id,
        "order_id": order_id,
        "order_date": "2024-01-15T10:30:00+00:00",
        "total_cents": cents,
        "items": [],
    }


def interaction(customer_id: str = "c1", kind: str = "support_ticket") -> dict:
    return {
        "customer_id": customer_id,
        "interaction_type": kind,
        "timestamp": "2024-01-15T10:30:00+00:00",
        "channel": "email",
        "metadata": {},
    }


def test_orders_are_idempotent_by_order_id(store):
    assert [o["order_id"] for o in store.add_orders("t", [order("o1"), order("o2")])] == [
        "o1",
        "o2",
    ]
    assert [o["order_id"] for o in store.add_orders("t", [order("o2"), order("o3")])] == ["o3"]
    assert store.add_orders("t", [order("o1", cents=5)]) == []
    assert [o["total_cents"] for o in store.orders_for("t", "c1")] == [1000, 1000, 1000]
    assert store.add_orders("t", [order("o9"), order("o9", cents=1)]) == [order("o9")]


def test_tenants_never_see_each_other(store):
    store.add_orders("a", [order("o1")])
    store.add_interactions("a", [interaction()])
    assert store.orders_for("b", "c1") == [] and store.interactions_for("b", "c1") == []
    assert not store.is_known("b", "c1") and store.is_known("a", "c1")
    assert store.add_orders("b", [order("o1")]) == [order("o1")]
    assert store.tenants() == {"a", "b"}


def test_known_customers_and_interactions(store):
    store.add_orders("t", [order("o1", "c1"), order("o2", "c2")])
    assert store.add_interactions("t", [interaction("c3"), interaction("c3", "email_open")]) == 2
    assert store.known_customers("t") == {"c1", "c2", "c3"}
    assert [i["interaction_type"] for i in store.interactions_for("t", "c3")] == [
        "support_ticket",
        "email_open",
    ]


def test_export_replace_and_reset(store):
    store.add_orders("t", [order("o1"), order("o2", "c2")])
    store.add_interactions("t", [interaction()])
    exported = store.export_tenant("t")
    assert [o["order_id"] for o in exported["orders"]] == ["o1", "o2"]
    store.replace_tenant("t", [order("o3")], [])
    assert [o["order_id"] for o in store.orders_for("t", "c1")] == ["o3"]
    assert store.orders_for("t", "c2") == [] and store.interactions_for("t", "c1") == []
    store.replace_tenant("t", exported["orders"], exported["interactions"])
    assert store.export_tenant("t") == exported
    store.add_orders("u", [order("o1")])
    store.reset("t")
    assert store.export_tenant("t") == {"orders": [], "interactions": []}
    assert store.orders_for("u", "c1") == [order("o1")]
    store.reset()
    assert store.tenants() == set()


def test_concurrent_ingestion_loses_nothing(store):
    def ingest(worker: int) -> None:
        for i in range(25):
            store.add_orders("t", [order(f"w{worker}-{i}", cents=worker * 100 + i)])

    threads = [threading.Thread(target=ingest, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    totals = sorted(o["total_cents"] for o in store.orders_for("t", "c1"))
    assert totals == sorted(w * 100 + i for w in range(8) for i in range(25))


def test_journal_is_a_bounded_ring(store):
    for i in range(7):
        store.journal_append({"n": i}, limit=5)
    assert [e["n"] for e in store.journal()] == [2, 3, 4, 5, 6]


def test_shared_values(store):
    assert store.get_value("clock") is None
    store.set_value("clock", {"frozen_at": None})
    assert store.get_value("clock") == {"frozen_at": None}
    store.reset()
    assert store.get_value("clock") is None


def test_redis_reset_of_one_tenant_leaves_keys_with_glob_characters_alone(redis_url):
    store = RedisStore(redis_url)
    store.add_orders("a*", [order("o1")])
    store.add_orders("ab", [order("o1")])
    store.reset("a*")
    assert store.orders_for("ab", "c1") == [order("o1")]
    assert store.orders_for("a*", "c1") == []
