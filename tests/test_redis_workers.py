"""Several server processes on one Redis behave as one sandbox."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.conftest import ServerProcess, eventually, free_port, serve_must_refuse


def order(order_id: str, total: float) -> dict:
    return {
        "customer_id": "c-shared",
        "order_id": order_id,
        "order_date": "2024-01-10T09:00:00Z",
        "total_price": total,
    }


def test_two_servers_share_data_clock_and_journal(redis_url):
    with ServerProcess("--store", redis_url) as one, ServerProcess("--store", redis_url) as two:
        before = two.post("/api/intelligence/analyze", {"customer_id": "c-shared"}).json()
        response = one.post(
            "/api/data/ingest_orders", {"source": "s", "orders": [order("o1", 12.34)]}
        )
        assert response.json()["ingested_count"] == 1
        after = two.post("/api/intelligence/analyze", {"customer_id": "c-shared"}).json()
        gained = (
            after["behavioral_metrics"]["lifetime_value"]
            - before["behavioral_metrics"]["lifetime_value"]
        )
        assert round(gained, 2) == 12.34
        one.post("/_sandbox/clock", {"now": "2024-01-20T00:00:00Z"}, key=None)
        assert two.get("/_sandbox/clock", key=None).json()["now"] == "2024-01-20T00:00:00Z"
        paths = eventually(
            lambda: [e["path"] for e in one.get("/_sandbox/requests", key=None).json()["requests"]],
            lambda got: got.count("/api/intelligence/analyze") >= 2,
        )
        assert paths.count("/api/intelligence/analyze") == 2


def test_four_workers_ingest_concurrently_without_losing_orders(redis_url):
    with ServerProcess("--store", redis_url, "--workers", "4") as server:

        def ingest(i: int) -> int:
            body = {"source": "s", "orders": [order(f"w-{i}", 1.0 + i / 100)]}
            return server.post("/api/data/ingest_orders", body).json()["ingested_count"]

        with ThreadPoolExecutor(8) as pool:
            counts = list(pool.map(ingest, range(40)))
        assert counts == [1] * 40
        analysis = server.post("/api/intelligence/analyze", {"customer_id": "c-shared"}).json()
        state = server.get("/_sandbox/state", key=None).json()
        ingested = state["tenants"]["linda_quilting"]["orders"]
        assert len(ingested) == 40
        assert round(sum(o["total_price"] for o in ingested), 2) == round(
            sum(1.0 + i / 100 for i in range(40)), 2
        )
        assert analysis["behavioral_metrics"]["total_orders"] >= 40


def test_unreachable_redis_is_a_clear_start_up_error():
    serve_must_refuse("--store", f"redis://127.0.0.1:{free_port()}/0", says="cannot reach Redis")


def test_workers_need_a_shared_store():
    serve_must_refuse("--workers", "2", says="needs a shared store")


def test_fault_times_are_counted_once_across_workers(redis_url):
    rule = {"match": {"path": "/api/intelligence/analyze"}, "fault": 503, "times": 3}
    with ServerProcess("--store", redis_url, "--workers", "4") as server:
        added = server.post("/_sandbox/faults", rule, key=None)
        assert added.status_code == 201, added.text

        def call(i: int) -> int:
            body = {"customer_id": f"c{i}"}
            return server.post("/api/intelligence/analyze", body).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(call, range(24)))
        assert sorted(statuses) == [200] * 21 + [503] * 3
        listed = server.get("/_sandbox/faults", key=None).json()["rules"]
        assert listed[0]["remaining"] == 0 and listed[0]["fired"] == 3


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def test_a_worker_that_dies_is_replaced_and_sigterm_stops_them_all(redis_url):
    server = ServerProcess("--store", redis_url, "--workers", "2").start()
    parent = server.process.pid
    workers = _children(parent)
    assert len(workers) == 2
    killed = min(workers)
    os.kill(killed, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = _children(parent)
        if len(now) == 2 and killed not in now:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"no replacement for worker {killed}: {_children(parent)}")
    answers = [server.post("/api/intelligence/analyze", {"customer_id": "c1"}) for _ in range(10)]
    assert [a.status_code for a in answers] == [200] * 10
    survivors = _children(parent)
    assert server.stop() == 0
    assert all(not Path(f"/proc/{pid}").exists() for pid in survivors)
