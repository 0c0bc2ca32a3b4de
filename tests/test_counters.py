"""Counters stores (memory and Redis): atomic increments, expiry, prefixes, rule list."""

from __future__ import annotations

import threading
import time

import pytest

from sandbox.store.counters import Counters, MemoryCounters
from sandbox.store.redis import RedisStore


@pytest.fixture(params=["memory", "redis"])
def counters(request) -> Counters:
    if request.param == "memory":
        return MemoryCounters()
    return RedisStore(request.getfixturevalue("redis_url"))


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


def test_redis_counters_expire_in_real_time(redis_url):
    counters = RedisStore(redis_url)
    assert counters.incr("a", 1, ttl_seconds=0.2) == 1
    assert counters.incr("a", 1, ttl_seconds=100) == 2  # the first ttl stands
    time.sleep(0.3)
    assert counters.get("a") == 0


def test_delete_by_prefix(counters):
    for key in ["x:1", "x:2", "y:1"]:
        counters.incr(key)
    assert counters.delete("x:") == 2
    assert (counters.get("x:1"), counters.get("y:1")) == (0, 1)


def test_concurrent_increments_are_not_lost(counters):

    def work() -> None:
        for _ in range(500):
            counters.incr("n")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counters.get("n") == 2000


def test_rules_keep_order_replace_by_id_and_are_copies(counters):
    counters.add_rule({"id": "a", "n": 1})
    counters.add_rule({"id": "b", "n": 2})
    counters.add_rule({"id": "a", "n": 3})
    assert [r["id"] for r in counters.rules()] == ["b", "a"]
    counters.rules()[0]["n"] = 99
    assert counters.rules()[0]["n"] == 2
    assert counters.remove_rule("b") and not counters.remove_rule("b")
    assert counters.clear_rules() == 1 and counters.rules() == []


def test_counts_reads_every_live_counter_under_a_prefix(counters):
    counters.incr("coverage|t1|op|a|200", 3)
    counters.incr("coverage|t1|op|a|404 X")
    counters.incr("coverage|t2|op|a|200")
    counters.incr("other", 5)
    assert counters.counts("coverage|t1|") == {
        "coverage|t1|op|a|200": 3,
        "coverage|t1|op|a|404 X": 1,
    }
    assert len(counters.counts("coverage|")) == 3
    assert counters.counts("nothing|") == {}


def test_counts_leaves_expired_counters_out():
    clock = FakeClock()
    counters = MemoryCounters(now=clock)
    counters.incr("p:a", ttl_seconds=1)
    counters.incr("p:b")
    clock.now += 2
    assert counters.counts("p:") == {"p:b": 1}


def test_exchange_reads_then_appends_or_deletes_and_bumps_counters(counters):
    values, old = counters.exchange("seq|a", "one", 3, 60, [("seq|n", 1), ("seq|w", 0)])
    assert values == [1, 0] and old == []
    for item in ("two", "three", "four"):
        counters.exchange("seq|a", item, 3, 60)
    values, old = counters.exchange("seq|a", None, 3, 60, [("seq|n", 2)])
    assert values == [3] and old == ["0 two", "0 three", "0 four"]  # the newest 3
    assert counters.exchange("seq|a", None, 3, 60) == ([], [])  # None deleted it
    counters.exchange("seq|b", "x", 3, 60, [("seq|n", 5)])
    assert counters.exchange("seq|b", "y", 3, 60)[1] == ["8 x"]  # tagged with seq|n
    assert counters.lists_pending()
    counters.delete("seq|")
    assert counters.exchange("seq|b", None, 3, 60) == ([], [])
    assert counters.get("seq|n") == 0


def test_exchanged_lists_expire():
    clock = FakeClock()
    counters = MemoryCounters(now=clock)
    assert not counters.lists_pending()
    counters.exchange("k", "a", 5, ttl_seconds=10)
    clock.now += 10
    assert counters.exchange("k", "b", 5, ttl_seconds=10) == ([], [])


def test_memory_lists_are_bounded_least_recently_written_first():
    counters = MemoryCounters(max_lists=2)
    counters.exchange("a", "1", 5, 60)
    counters.exchange("b", "1", 5, 60)
    counters.exchange("a", "2", 5, 60)  # a is now the newest
    counters.exchange("c", "1", 5, 60)  # b goes
    assert counters.exchange("b", None, 5, 60)[1] == []
    assert counters.exchange("a", None, 5, 60)[1] == ["0 1", "0 2"]
