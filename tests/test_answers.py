"""The answer cache: a hit only while nothing the answer depends on has changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sandbox.answers import AnswerCache
from sandbox.app import create_app
from sandbox.clock import Clock
from sandbox.store.memory import MemoryStore
from tests.conftest import DEFAULT_KEY


class Computations:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> bytes:
        self.count += 1
        return f"answer {self.count}".encode()


@pytest.fixture
def parts():
    store = MemoryStore()
    clock = Clock(datetime(2025, 3, 1, 12, tzinfo=UTC))
    return store, clock, AnswerCache(store, clock, size=3)


def test_same_question_same_state_is_computed_once(parts):
    _, _, cache = parts
    compute = Computations()
    first = cache.answer("analyzeCustomer", "t1", b'{"customer_id":"c"}', {}, compute)
    again = cache.answer("analyzeCustomer", "t1", b'{"customer_id":"c"}', {}, compute)
    assert first == again == b"answer 1" and compute.count == 1


@pytest.mark.parametrize(
    "other",
    [
        ("predictChurn", "t1", b'{"customer_id":"c"}', {}),
        ("analyzeCustomer", "t2", b'{"customer_id":"c"}', {}),
        ("analyzeCustomer", "t1", b'{"customer_id":"d"}', {}),
        ("analyzeCustomer", "t1", b'{"customer_id":"c"}', {"industry": "saas"}),
    ],
)
def test_any_other_operation_tenant_body_or_path_is_another_answer(parts, other):
    _, _, cache = parts
    compute = Computations()
    cache.answer("analyzeCustomer", "t1", b'{"customer_id":"c"}', {}, compute)
    assert cache.answer(*other, compute) == b"answer 2"


def test_ingesting_resetting_or_moving_the_clock_a_day_recomputes_that_tenant(parts):
    store, clock, cache = parts
    compute = Computations()

    def ask() -> bytes:
        return cache.answer("analyzeCustomer", "t1", b"{}", {}, compute)

    ask()
    clock.advance(timedelta(hours=6))  # the same calendar day: the same answer
    assert ask() == b"answer 1"
    clock.advance(timedelta(hours=12))
    assert ask() == b"answer 2"
    order = {
        "customer_id": "c",
        "order_id": "o1",
        "order_date": "2025-03-01T00:00:00Z",
        "total_cents": 100,
        "items": [],
    }
    store.add_orders("t2", [order])  # another tenant's ingest: not this tenant's answers
    assert ask() == b"answer 2"
    store.add_orders("t1", [order])
    assert ask() == b"answer 3"
    store.add_orders("t1", [order])  # a duplicate stores nothing: still cached
    assert ask() == b"answer 3"
    store.add_interactions("t1", [{"customer_id": "c"}])
    assert ask() == b"answer 4"
    store.reset("t1")
    assert ask() == b"answer 5"
    store.reset("t2")
    assert ask() == b"answer 5"
    store.reset()  # everything
    assert ask() == b"answer 6"
    store.replace_tenant("t1", [], [])
    assert ask() == b"answer 7"


def test_errors_are_not_kept(parts):
    _, _, cache = parts

    def missing() -> bytes:
        raise LookupError("no such customer")

    with pytest.raises(LookupError):
        cache.answer("analyzeCustomer", "t1", b"{}", {}, missing)
    compute = Computations()
    assert cache.answer("analyzeCustomer", "t1", b"{}", {}, compute) == b"answer 1"


def test_it_holds_at_most_its_size_dropping_the_oldest(parts):
    _, _, cache = parts
    compute = Computations()
    for body in (b"1", b"2", b"3", b"4"):
        cache.answer("op", "t", body, {}, compute)
    assert compute.count == 4
    cache.answer("op", "t", b"4", {}, compute)
    cache.answer("op", "t", b"2", {}, compute)
    assert compute.count == 4  # 2, 3 and 4 are kept
    cache.answer("op", "t", b"1", {}, compute)
    assert compute.count == 5  # 1 was dropped first


def test_a_store_that_cannot_tell_its_revision_gets_no_cache():
    class SharedStore(MemoryStore):
        def revision(self, tenant: str) -> None:
            return None

    store = SharedStore()
    cache = AnswerCache(store, Clock())
    compute = Computations()
    cache.answer("op", "t", b"", {}, compute)
    cache.answer("op", "t", b"", {}, compute)
    assert compute.count == 2


def test_through_the_app_ingest_and_clock_show_up_at_once():
    client = create_app(now="2025-03-01T12:00:00Z").test_client()
    headers = {"X-API-Key": DEFAULT_KEY}
    body = {"customer_id": "cache-cust"}

    def metrics() -> dict:
        response = client.post("/api/intelligence/analyze", json=body, headers=headers)
        assert response.status_code == 200
        return response.get_json()["behavioral_metrics"]

    before = metrics()
    assert metrics() == before
    order = {
        "customer_id": "cache-cust",
        "order_id": "cache-o1",
        "order_date": "2025-03-01T08:00:00Z",
        "total_price": 250.0,
    }
    ingest = client.post(
        "/api/data/ingest_orders", json={"source": "t", "orders": [order]}, headers=headers
    )
    assert ingest.status_code == 200
    after = metrics()
    assert after["total_orders"] == before["total_orders"] + 1
    assert after["days_since_last_purchase"] == 0
    client.post("/_sandbox/clock", json={"advance": "2d"})
    assert metrics()["days_since_last_purchase"] == 2
