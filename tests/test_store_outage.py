"""A Redis outage is a clean failure: 503 in the envelope, health degraded, one log line
at each end, recovery without a restart, and nothing answered 200 lost.

These tests run their own redis-server (they stop it), with an append-only file fsynced
on every write, so a restarted Redis has all it acknowledged.
"""

from __future__ import annotations

import inspect
import logging
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests

from sandbox.errors import StoreUnavailable, envelope
from sandbox.store.outage import Outage, store_name
from sandbox.store.redis import RedisStore
from tests.conftest import ServerProcess, free_port

PASSWORD = "hunter2-outage"
OUTAGE_STARTS = re.compile(r"store (\S+) unreachable .* \[pid (\d+)\]")
OUTAGE_ENDS = re.compile(r"store (\S+) reachable again after .* \[pid (\d+)\]")


class RedisServer:
    """A redis-server on a fixed free port that a test may stop and start again."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("these tests need redis-server on PATH (scripts/test.sh installs it)")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"
        self.shown = f"redis://:***@127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port)]
            + ["--requirepass", PASSWORD, "--save", "", "--dir", str(self.workdir)]
            + ["--appendonly", "yes", "--appendfsync", "always"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.dbsize()  # refused while the data is still loading, unlike PING
                return
            except redis.RedisError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} did not come up")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=10)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped one would never exit
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.close()


def order(order_id: str, total: float) -> dict:
    return {
        "customer_id": "c-outage",
        "order_id": order_id,
        "order_date": "2024-01-10T09:00:00Z",
        "total_price": total,
    }


def ingest(server: ServerProcess, *orders: dict) -> requests.Response:
    return server.post("/api/data/ingest_orders", {"source": "s", "orders": list(orders)})


def lifetime_value(server: ServerProcess) -> float:
    answer = server.post("/api/intelligence/analyze", {"customer_id": "c-outage"})
    assert answer.status_code == 200, answer.text
    return answer.json()["behavioral_metrics"]["lifetime_value"]


def assert_store_unavailable(response: requests.Response, redis_server: RedisServer) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "error": {
            "code": "SERVICE_UNAVAILABLE",
            "message": "The sandbox's store is unreachable. Retry after Retry-After seconds.",
            "details": {"retry_after_seconds": 1, "store": redis_server.shown},
        }
    }
    assert PASSWORD not in response.text


def healthcheck(server: ServerProcess) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sandbox", "healthcheck", "--port", str(server.port)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def wait_until_healthy(server: ServerProcess, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.get("/_sandbox/health", key=None).status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"the sandbox did not recover within {timeout}s")


def wait_out_refusals() -> None:
    """Past the window in which a process refuses without asking Redis (Retry-After)."""
    time.sleep(1.2)


# The pieces, without a server.


def test_store_name_never_shows_a_password():
    assert store_name("redis://:s3cret@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert store_name("redis://app:s3cret@cache:6379/2") == "redis://app:***@cache:6379/2"
    assert store_name("redis://cache:6379/0?password=s3cret") == "redis://cache:6379/0"
    assert store_name("redis://cache:6379/0") == "redis://cache:6379/0"
    assert store_name("rediss://[::1]:6380/1") == "rediss://[::1]:6380/1"
    assert store_name("unix:///run/redis.sock?db=1&password=s3cret") == "unix:///run/redis.sock"


def test_every_public_store_method_is_guarded():
    public = {
        name: member
        for name, member in vars(RedisStore).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }
    assert "add_orders" in public and "incr" in public and "journal_append" in public
    unguarded = {name for name, member in public.items() if not hasattr(member, "__wrapped__")}
    # check_reachable: a start-up error, not an outage; revision, lists_pending,
    # end_request, journal_append and bump (queued; their thread's write is guarded):
    # never ask Redis; incr_many_ahead (no reply: the inline call, guarded, follows) and
    # close_ahead (closes a socket).
    assert unguarded == {
        "check_reachable",
        "revision",
        "lists_pending",
        "end_request",
        "journal_append",
        "bump",
        "incr_many_ahead",
        "close_ahead",
    }


def test_outage_logs_once_at_each_end_and_refuses_while_a_failure_is_fresh(caplog):
    now = [100.0]
    outage = Outage("redis://:***@h:1/0", secret="pw", clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="sandbox.store")
    outage.refuse_while_fresh()  # up: nothing happens
    for _ in range(3):
        error = outage.failed(ConnectionError("Error 111 connecting, password pw"))
        assert isinstance(error, StoreUnavailable)
    assert envelope(error)["error"]["details"] == {
        "retry_after_seconds": 1,
        "store": "redis://:***@h:1/0",
    }
    with pytest.raises(StoreUnavailable):
        outage.refuse_while_fresh()
    now[0] += 1.5
    outage.refuse_while_fresh()  # stale: the next call asks the store again
    outage.answered()
    outage.answered()
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages
    assert "unreachable (ConnectionError: Error 111 connecting, password ***)" in messages[0]
    assert "reachable again after 1.5 s" in messages[1]
    assert "pw" not in "".join(messages).replace("password", "")


def test_a_redis_never_reached_is_a_start_up_error_without_its_password():
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "serve", "--store", url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2, result.stderr
    assert "cannot reach Redis" in result.stderr
    assert "redis://:***@127.0.0.1:" in result.stderr
    assert PASSWORD not in result.stderr
    assert "Traceback" not in result.stderr


# A real Redis, stopped and started again under a running sandbox.


def test_outage_single_process(redis_server):
    server = ServerProcess("--store", redis_server.url).start()
    try:
        before = lifetime_value(server)
        for i, total in enumerate((10.0, 20.5, 30.25)):
            assert ingest(server, order(f"o{i}", total)).json()["ingested_count"] == 1

        redis_server.stop(signal.SIGTERM)
        analyze = server.post("/api/intelligence/analyze", {"customer_id": "c-outage"})
        assert_store_unavailable(analyze, redis_server)
        # A write is refused whole: a batch is one Lua script, so none of it lands.
        refused = ingest(server, order("late-1", 1.0), order("late-2", 2.0))
        assert_store_unavailable(refused, redis_server)
        interactions = {
            "source": "s",
            "interactions": [
                {
                    "customer_id": "c-outage",
                    "interaction_type": "email_open",
                    "timestamp": "2024-01-11T09:00:00Z",
                    "channel": "email",
                }
            ],
        }
        refused = server.post("/api/data/ingest_interactions", interactions)
        assert_store_unavailable(refused, redis_server)
        benchmarks = server.get("/api/insights/benchmarks/quilting")
        assert_store_unavailable(benchmarks, redis_server)
        # The control API too, in the same envelope.
        assert_store_unavailable(server.get("/_sandbox/requests", key=None), redis_server)
        rule = {"match": {"path": "/api/*"}, "fault": 500}
        assert_store_unavailable(server.post("/_sandbox/faults", rule, key=None), redis_server)

        health = server.get("/_sandbox/health", key=None)
        assert health.status_code == 503
        assert health.json()["status"] == "degraded"
        assert health.json()["store"] == "unreachable"
        probe = healthcheck(server)
        assert probe.returncode == 1
        assert "503" in probe.stderr and "degraded" in probe.stderr

        redis_server.start()
        wait_until_healthy(server)
        assert healthcheck(server).returncode == 0
        wait_out_refusals()
        assert lifetime_value(server) - before == pytest.approx(60.75)
        state = server.get("/_sandbox/state", key=None).json()
        kept = state["tenants"]["linda_quilting"]
        assert [o["order_id"] for o in kept["orders"]] == ["o0", "o1", "o2"]
        assert kept["interactions"] == []
        # The faults rule refused during the outage was never added.
        assert server.get("/_sandbox/faults", key=None).json()["rules"] == []
    finally:
        server.stop()
        log = server.output()
    assert "Traceback" not in log
    assert PASSWORD not in log
    starts, ends = OUTAGE_STARTS.findall(log), OUTAGE_ENDS.findall(log)
    assert [store for store, _ in starts] == [redis_server.shown], log
    assert [store for store, _ in ends] == [redis_server.shown], log
    assert starts[0][1] == ends[0][1] == str(server.process.pid)


def test_outage_with_two_workers_after_redis_is_killed(redis_server):
    server = ServerProcess("--store", redis_server.url, "--workers", "2").start()
    try:
        before = lifetime_value(server)
        with ThreadPoolExecutor(4) as pool:
            ingested = list(pool.map(lambda i: ingest(server, order(f"w{i}", 1.0 + i)), range(8)))
        assert [r.json()["ingested_count"] for r in ingested] == [1] * 8

        # SIGKILL: Redis gets no chance to save; fsynced appends keep what it acknowledged.
        redis_server.stop(signal.SIGKILL)

        def during(i: int) -> requests.Response:
            if i % 2:
                return ingest(server, order(f"lost{i}", 5.0))
            return server.post("/api/intelligence/analyze", {"customer_id": "c-outage"})

        with ThreadPoolExecutor(8) as pool:
            for response in pool.map(during, range(24)):
                assert_store_unavailable(response, redis_server)
        assert server.get("/_sandbox/health", key=None).status_code == 503
        assert healthcheck(server).returncode == 1

        redis_server.start()
        wait_until_healthy(server)
        wait_out_refusals()
        with ThreadPoolExecutor(8) as pool:
            after = list(pool.map(lambda _: lifetime_value(server), range(16)))
        assert after == [pytest.approx(before + sum(1.0 + i for i in range(8)))] * 16
        state = server.get("/_sandbox/state", key=None).json()
        kept = state["tenants"]["linda_quilting"]["orders"]
        assert sorted(o["order_id"] for o in kept) == [f"w{i}" for i in range(8)]
        journal = server.get("/_sandbox/requests", key=None).json()["requests"]
        answered_by = {entry["id"].split("-")[0] for entry in journal}
    finally:
        server.stop()
        log = server.output()
    assert "Traceback" not in log
    assert PASSWORD not in log
    starts = [pid for _, pid in OUTAGE_STARTS.findall(log)]
    ends = [pid for _, pid in OUTAGE_ENDS.findall(log)]
    # Per process: each worker that met the outage logged its start once and its end once.
    assert starts, log
    assert sorted(starts) == sorted(set(starts)) == sorted(ends), log
    # Journal ids carry the pid: both workers answered, and both met the outage.
    assert len(answered_by) == 2, answered_by
    assert set(starts) == answered_by, log


def test_a_redis_that_hangs_gets_a_503_not_a_hung_request(redis_server):
    server = ServerProcess("--store", redis_server.url).start()
    try:
        assert ingest(server, order("h1", 4.0)).status_code == 200
        redis_server.process.send_signal(signal.SIGSTOP)
        # Connections are accepted by the kernel but never answered: the client's socket
        # timeout ends the wait (requests' own timeout of 10 s would fail the test).
        analyze = server.post("/api/intelligence/analyze", {"customer_id": "c-outage"})
        assert_store_unavailable(analyze, redis_server)
        assert server.get("/_sandbox/health", key=None).status_code == 503
        redis_server.process.send_signal(signal.SIGCONT)
        wait_until_healthy(server)
        wait_out_refusals()
        assert server.post("/api/intelligence/analyze", {"customer_id": "c-outage"}).ok
    finally:
        server.stop()
        log = server.output()
    assert "Traceback" not in log
    assert "TimeoutError" in log
    assert len(OUTAGE_STARTS.findall(log)) == 1 and len(OUTAGE_ENDS.findall(log)) == 1, log
