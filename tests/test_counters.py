"""The in-memory Counters store: atomic increments, expiry, prefixes and the rule list."""

from __future__ import annotations

import threading

from sandbox.store.counters import Counters, MemoryCounters


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_incr_get_and_expiry():
    clock = FakeClock()
    counters: Counters = MemoryCounters(now=clock)
    assert counters.get("a") == 0
    assert counters.incr("a", 1, ttl_seconds=10) == 1
    assert counters.incr("a", 2, ttl_seconds=10) == 3
    clock.now += 9.9
    assert counters.get("a") == 3
    clock.now += 0.1
    assert counters.get("a") == 0
    assert counters.incr("a") == 1  # a new counter, without expiry now
    clock.now += 10_000
    assert counters.get("a") == 1


def test_delete_by_prefix():
    counters = MemoryCounters()
    for key in ["x:1", "x:2", "y:1"]:
        counters.incr(key)
    assert counters.delete("x:") == 2
    assert (counters.get("x:1"), counters.get("y:1")) == (0, 1)


def test_concurrent_increments_are_not_lost():
    counters = MemoryCounters()

    def work() -> None:
        for _ in range(2000):
            counters.incr("n")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counters.get("n") == 8000


def test_rules_keep_order_replace_by_id_and_are_copies():
    counters = MemoryCounters()
    counters.add_rule({"id": "a", "n": 1})
    counters.add_rule({"id": "b", "n": 2})
    counters.add_rule({"id": "a", "n": 3})
    assert [r["id"] for r in counters.rules()] == ["b", "a"]
    counters.rules()[0]["n"] = 99
    assert counters.rules()[0]["n"] == 2
    assert counters.remove_rule("b") and not counters.remove_rule("b")
    assert counters.clear_rules() == 1 and counters.rules() == []
