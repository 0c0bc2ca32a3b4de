"""The Redis store's per-request view and what it lets a process keep (sandbox.store.redis):
a request reads rules, clock and the tenant's revision with its rate-limit counts, and
whatever another process changes is seen by the next request. Two RedisStore objects (or
two apps) on one Redis stand for two processes. Also the journal, written by a thread of
each process in batches (sandbox.store.redis_journal)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from sandbox.app import create_app
from sandbox.store.redis import RedisStore
from tests.conftest import DEFAULT_KEY, ServerProcess
from tests.test_store import order


def begin(store: RedisStore, tenant: str = "t1") -> list[int]:
    store.end_request()
    return store.incr_many([("ratelimit:k:m:0", 1, 61)], tenant)


def test_incr_many_counts_like_incr_and_takes_back(redis_url):
    store = RedisStore(redis_url)
    assert store.incr_many([("a", 1, 60), ("b", 2, None)], "t1") == [1, 2]
    assert store.incr_many([("a", 1, 60), ("b", -1, None)]) == [2, 1]
    assert (store.get("a"), store.get("b")) == (2, 1)


def test_a_kept_rule_list_follows_another_process_changes(redis_url):
    mine, other = RedisStore(redis_url), RedisStore(redis_url)
    begin(mine)
    assert mine.rules() == []
    other.add_rule({"id": "r1", "fault": "500"})
    begin(mine)
    assert [r["id"] for r in mine.rules()] == ["r1"]
    other.add_rule({"id": "r2", "fault": "503"})
    begin(mine)
    assert [r["id"] for r in mine.rules()] == ["r1", "r2"]
    other.remove_rule("r1")
    begin(mine)
    assert [r["id"] for r in mine.rules()] == ["r2"]
    other.clear_rules()
    begin(mine)
    assert mine.rules() == []
    other.add_rule({"id": "r3", "fault": "500"})
    other.reset()  # a full reset deletes the version key too: must not look unchanged
    begin(mine)
    assert mine.rules() == []


def test_an_unchanged_rule_list_is_not_read_again(redis_url, monkeypatch):
    mine, other = RedisStore(redis_url), RedisStore(redis_url)
    other.add_rule({"id": "r1", "fault": "500"})
    begin(mine)
    assert [r["id"] for r in mine.rules()] == ["r1"]

    script = mine._wire.script

    def must_not_read_rules(which, keys, args):
        assert which is not mine._read_rules, "the rule list was read again"
        return script(which, keys, args)

    monkeypatch.setattr(mine._wire, "script", must_not_read_rules)
    begin(mine)
    assert [r["id"] for r in mine.rules()] == ["r1"]
    monkeypatch.undo()
    mine.end_request()  # no view (e.g. the control API): always read
    other.add_rule({"id": "r2", "fault": "500"})
    assert [r["id"] for r in mine.rules()] == ["r1", "r2"]


def test_a_view_sees_another_process_ingest_from_the_next_request(redis_url):
    mine, other = RedisStore(redis_url), RedisStore(redis_url)
    begin(mine)
    empty = mine.revision("t1")
    assert empty is not None
    assert (mine.is_known("t1", "c1"), mine.orders_for("t1", "c1")) == (False, [])
    assert mine.revision("t2") is None  # not the view's tenant: no answer cache
    other.add_orders("t1", [order("o1")])
    begin(mine)
    assert mine.revision("t1") != empty
    assert mine.is_known("t1", "c1")
    assert [o["order_id"] for o in mine.orders_for("t1", "c1")] == ["o1"]
    ingested = mine.revision("t1")
    other.add_interactions("t1", [{"customer_id": "c1", "interaction_type": "x"}])
    begin(mine)
    assert mine.revision("t1") not in {empty, ingested}
    assert len(mine.interactions_for("t1", "c1")) == 1


def test_resets_never_bring_back_an_earlier_revision(redis_url):
    mine, other = RedisStore(redis_url), RedisStore(redis_url)
    seen = []
    for change in (
        lambda: other.add_orders("t1", [order("o1")]),
        lambda: other.reset("t1"),
        lambda: other.add_orders("t1", [order("o1")]),
        lambda: other.reset(),
    ):
        change()
        begin(mine)
        seen.append(mine.revision("t1"))
    assert len(set(seen)) == len(seen)
    assert mine.orders_for("t1", "c1") == []


def test_the_clock_is_read_with_the_view_and_a_write_drops_it(redis_url):
    mine, other = RedisStore(redis_url), RedisStore(redis_url)
    other.set_value("clock", {"frozen_at": "2024-01-20T00:00:00+00:00"})
    begin(mine)
    assert mine.get_value("clock") == {"frozen_at": "2024-01-20T00:00:00+00:00"}
    mine.set_value("clock", {"frozen_at": "2024-02-01T00:00:00+00:00"})
    assert mine.get_value("clock") == {"frozen_at": "2024-02-01T00:00:00+00:00"}


@pytest.fixture
def two_apps(redis_url):
    return create_app(store=redis_url).test_client(), create_app(store=redis_url).test_client()


def analyze(client, customer_id: str = "c-shared") -> dict:
    response = client.post(
        "/api/intelligence/analyze",
        json={"customer_id": customer_id},
        headers={"X-API-Key": DEFAULT_KEY},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_a_cached_answer_gives_way_to_another_process_ingest(two_apps):
    one, two = two_apps
    before = analyze(one)
    assert analyze(one) == before  # now cached in this process
    response = two.post(
        "/api/data/ingest_orders",
        json={
            "source": "s",
            "orders": [
                {
                    "customer_id": "c-shared",
                    "order_id": "o1",
                    "order_date": "2024-01-10T09:00:00Z",
                    "total_price": 12.34,
                }
            ],
        },
        headers={"X-API-Key": DEFAULT_KEY},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    after = analyze(one)
    gained = (
        after["behavioral_metrics"]["lifetime_value"]
        - before["behavioral_metrics"]["lifetime_value"]
    )
    assert round(gained, 2) == 12.34


def test_a_cached_answer_gives_way_to_another_process_clock_and_reset(two_apps):
    one, two = two_apps
    assert two.post("/_sandbox/clock", json={"now": "2030-01-01T00:00:00Z"}).status_code == 200
    first = analyze(one, "test_customer_high_ltv")
    assert analyze(one, "test_customer_high_ltv") == first
    assert two.post("/_sandbox/clock", json={"advance": "30d"}).status_code == 200
    moved = analyze(one, "test_customer_high_ltv")
    assert moved != first
    assert two.post("/_sandbox/reset", json={}).status_code == 200
    assert analyze(one, "test_customer_high_ltv") != moved


def test_queued_journal_entries_are_read_in_order_here_and_elsewhere(redis_url):
    mine, other = RedisStore(redis_url), RedisStore(redis_url)
    for i in range(50):
        mine.journal_append({"id": f"e{i}"}, 30)
    assert [e["id"] for e in mine.journal()] == [f"e{i}" for i in range(20, 50)]
    assert [e["id"] for e in other.journal()] == [f"e{i}" for i in range(20, 50)]
    mine.journal_append({"id": "late"}, 30)
    mine.reset()  # waits for the queue: an entry from before a reset must not outlive it
    assert other.journal() == []


def test_queued_journal_entries_are_written_before_the_process_exits(redis_url):
    script = f"""
import time
from sandbox.store.redis import RedisStore

store = RedisStore({redis_url!r})
write = store.append_journal_batch

def slow(docs, limit, bumps):
    time.sleep(0.2)  # still writing when the process is told to exit
    write(docs, limit, bumps)

store._journal_writer._write = slow
for i in range(20):
    store.journal_append({{"id": i}}, 1000)
    store.bump(["seen"])
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [e["id"] for e in RedisStore(redis_url).journal()] == list(range(20))
    assert RedisStore(redis_url).get("seen") == 20


def test_workers_stopped_by_sigterm_leave_every_answered_request_in_the_journal(redis_url):
    server = ServerProcess("--store", redis_url, "--workers", "2").start()
    try:
        answers = [
            server.post("/api/intelligence/analyze", {"customer_id": "c1"}) for _ in range(30)
        ]
    finally:
        assert server.stop() == 0
    assert [a.status_code for a in answers] == [200] * 30
    paths = [e["path"] for e in RedisStore(redis_url).journal()]
    assert paths.count("/api/intelligence/analyze") == 30


def test_calls_on_the_wire_load_scripts_that_redis_forgot(redis_url):
    store = RedisStore(redis_url)
    assert store.incr_many([("a", 1, None)], "t1") == [1]
    store._redis.script_flush()  # as after a Redis restart without persistence
    assert store.incr_many([("a", 1, None)], "t1") == [2]
    assert store.exchange("l", "x", 5, 60, [("a", 1)]) == ([3], [])


def test_a_kept_connection_that_redis_closed_is_not_used(redis_url, monkeypatch):
    store = RedisStore(redis_url)
    store.incr_many([("a", 1, None)], "t1")
    store._redis.client_kill_filter(_type="normal", skipme=True)  # every other client
    monkeypatch.setattr("sandbox.store.redis_wire.CHECK_AFTER_IDLE_SECONDS", 0)
    assert store.incr_many([("a", 1, None)], "t1") == [2]


def test_a_view_knows_whether_a_tenant_may_have_lists_kept_by_any_process(redis_url):
    mine, other = RedisStore(redis_url), RedisStore(redis_url)
    begin(mine)
    assert not mine.lists_pending("t1")
    assert mine.lists_pending("t2")  # not the view's tenant: cannot know without asking
    mine.end_request()
    assert mine.lists_pending("t1")  # no view: cannot know either
    other.exchange("behaviour|t1|fp", "failed", 5, 60, scope="t1")
    begin(mine)
    assert mine.lists_pending("t1")
    other.exchange("behaviour|t1|fp", None, 5, 60, scope="t1")  # deleting keeps the marker
    begin(mine)
    assert mine.lists_pending("t1")
    other.exchange("behaviour|t3|fp", "failed", 5, 0.2, scope="t3")
    begin(mine, "t3")
    assert mine.lists_pending("t3")
    time.sleep(0.3)  # the marker lives as long as the longest-lived list, no longer
    begin(mine, "t3")
    assert not mine.lists_pending("t3")


def test_queued_bumps_are_counted_here_at_once_and_elsewhere_once_written(redis_url):
    mine, other = RedisStore(redis_url), RedisStore(redis_url)
    for _ in range(3):
        mine.bump(["cov|a", "cov|b"])
    assert mine.counts("cov|") == {"cov|a": 3, "cov|b": 3}
    assert other.counts("cov|") == {"cov|a": 3, "cov|b": 3}
    mine.bump(["cov|a"])
    assert mine.delete("cov|") == 2  # waits for the queued bump: none outlives it
    assert other.counts("cov|") == {}


def test_an_idle_journal_writer_ends_its_thread_and_the_next_entry_starts_one(
    redis_url, monkeypatch
):
    monkeypatch.setattr("sandbox.store.redis_journal.IDLE_EXIT_SECONDS", 0.05)
    store = RedisStore(redis_url)
    store.journal_append({"id": "first"}, 10)
    assert [e["id"] for e in store.journal()] == ["first"]
    deadline = time.monotonic() + 5
    while store._journal_writer._running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not store._journal_writer._running
    store.journal_append({"id": "second"}, 10)
    assert [e["id"] for e in store.journal()] == ["first", "second"]
