"""A Redis-backed request's store call made on the event loop before the app runs
(sandbox.store.redis_ahead, FastPath.ahead, RateLimiter.admit_ahead): the app then makes
none, the count and the headers are what the inline call gives, concurrent requests'
calls share one write, and whenever Redis gives no reply the inline call still happens."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from concurrent.futures import ThreadPoolExecutor

import redis
import requests

from sandbox.api.pipeline import AHEAD_KEY
from sandbox.app import create_app
from sandbox.netfaults import BODY_KEY
from sandbox.ratelimit import Ahead, Limits, RateLimiter
from sandbox.store.counters import MemoryCounters
from sandbox.store.redis_ahead import _Connection
from tests.conftest import DEFAULT_KEY, ServerProcess

BODY = b'{"customer_id":"test_customer_high_ltv","context":{}}'


def _environ(key: str = DEFAULT_KEY, path: str = "/api/intelligence/analyze") -> dict:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(BODY),
        "wsgi.errors": sys.stderr,
        BODY_KEY: BODY,
        "CONTENT_LENGTH": str(len(BODY)),
        "CONTENT_TYPE": "application/json",
        "HTTP_X_API_KEY": key,
    }


def _call(app, environ: dict) -> tuple[str, dict[str, str], bytes]:
    seen: list = []
    body = b"".join(app(environ, lambda status, headers, exc=None: seen.extend([status, headers])))
    return seen[0], dict(seen[1]), body


async def _count_ahead(app, environ: dict) -> bool:
    """The server's step before the app: True once it ran (a connection is made on the
    first try, in the background, so the first tries may find none)."""
    for _ in range(100):
        before = app.sandbox_ahead(environ)
        if before is not None:
            await before
            return True
        await asyncio.sleep(0.01)
    return False


def _ahead(app, environ: dict) -> bool:
    """:func:`_count_ahead` on a loop of its own, closed with its connection."""

    async def step():
        try:
            return await _count_ahead(app, environ)
        finally:
            app.sandbox_close()

    return asyncio.run(step())


def test_counted_ahead_the_app_makes_no_store_call(redis_url):
    app = create_app(store=redis_url, rate_limit="5/min")
    store = app.extensions["quimbi"].store
    _call(app, _environ())  # a process's first request also reads the fault rules
    first = _environ()
    _ahead(app, first)
    assert AHEAD_KEY in first

    def no_inline_call(*args, **kwargs):
        raise AssertionError("the request's count was made ahead; no inline call expected")

    inline, store._wire.script = store._wire.script, no_inline_call
    try:
        status, headers, body = _call(app, first)
    finally:
        store._wire.script = inline
    assert status.startswith("200")
    assert json.loads(body)["customer_id"] == "test_customer_high_ltv"
    assert headers["X-RateLimit-Remaining"] == "3"
    # The inline call, for a request nobody counted ahead, goes on from the same count.
    status, headers, _ = _call(app, _environ())
    assert status.startswith("200") and headers["X-RateLimit-Remaining"] == "2"


def test_nothing_is_counted_ahead_where_the_pipeline_would_not_count(redis_url):
    app = create_app(store=redis_url)
    for environ in (
        _environ(key="qpk_not_a_key"),
        _environ(path="/api/intelligence/nope"),
        _environ(path="/_sandbox/health"),
    ):
        assert app.sandbox_ahead(environ) is None
    assert create_app().sandbox_ahead(_environ()) is None  # the memory store: inline


def test_a_script_redis_lost_leaves_the_call_inline_and_counts_it_once(redis_url):
    app = create_app(store=redis_url, rate_limit="5/min")
    _call(app, _environ())

    async def scenario():
        try:
            assert await _count_ahead(app, _environ())  # connected, the script loaded
            redis.Redis.from_url(redis_url).script_flush()
            environ = _environ()
            assert await _count_ahead(app, environ)
            assert AHEAD_KEY not in environ  # NOSCRIPT: the script did not run
            return _call(app, environ)
        finally:
            app.sandbox_close()

    status, headers, _ = asyncio.run(scenario())
    # The first ahead counted (and was never answered: 4 left), the inline call once.
    assert status.startswith("200") and headers["X-RateLimit-Remaining"] == "2"


def test_redis_failing_ahead_is_the_outage_and_its_503_without_a_second_wait(redis_url):
    app = create_app(store=redis_url)
    store = app.extensions["quimbi"].store
    store._ahead._kwargs = {**store._ahead._kwargs, "port": 1}  # Redis gone, as seen ahead
    environ = _environ()

    async def connect_and_fail():
        try:
            assert app.sandbox_ahead(environ) is None  # connecting, in the background
            for _ in range(100):
                await asyncio.sleep(0.01)
                if store.outage.down_since is not None:
                    break
            assert app.sandbox_ahead(environ) is None  # down: nothing is sent ahead
        finally:
            app.sandbox_close()

    asyncio.run(connect_and_fail())
    assert AHEAD_KEY not in environ
    assert store.outage.down_since is not None

    def no_inline_call(*args, **kwargs):
        raise AssertionError("a failure fresh from ahead must be refused, not asked again")

    store._wire.script = no_inline_call
    status, headers, body = _call(app, environ)
    assert status.startswith("503") and headers["Retry-After"] == "1"
    assert json.loads(body)["error"]["code"] == "SERVICE_UNAVAILABLE"


def test_a_request_counted_ahead_keeps_its_window_when_the_clock_moves_on():
    class AheadCounters(MemoryCounters):  # counts ahead as the Redis store does
        def incr_many_ahead(self, items, tenant):
            reply = asyncio.get_running_loop().create_future()
            reply.set_result(super().incr_many(items, tenant))
            return reply

        def incr_many(self, items, tenant=None, ahead=None):
            return ahead if ahead is not None else super().incr_many(items, tenant)

    now = [119.5]
    counters = AheadCounters(now=lambda: now[0])
    limiter = RateLimiter(counters, Limits(per_minute=10, per_hour=100), now=lambda: now[0])

    async def counted() -> Ahead:
        pending = limiter.admit_ahead("key", "t1")
        return Ahead(pending.now, await pending.reply)

    ahead = asyncio.run(counted())
    assert ahead.now == 119.5
    now[0] = 120.5  # the next minute, before the app ran
    quota = limiter.admit("key", "t1", ahead)
    assert (quota.remaining, quota.reset) == (9, 120)
    counts = counters.counts("ratelimit:")
    assert sorted(counts.values()) == [1, 1]  # counted once, in the minute it arrived


class _Transport:
    def __init__(self):
        self.writes: list[bytes] = []
        self.aborted = False

    def write(self, data):
        self.writes.append(data)

    def abort(self):
        self.aborted = True


def test_commands_sent_in_one_turn_of_the_loop_go_out_in_one_write():
    async def scenario():
        failures: list[BaseException] = []
        connection = _Connection(asyncio.get_running_loop(), 5.0, failures.append)
        transport = _Transport()
        connection.connection_made(transport)
        futures = [connection.send(b"*1\r\n$4\r\nPING\r\n") for _ in range(3)]
        await asyncio.sleep(0)
        assert len(transport.writes) == 1 and transport.writes[0].count(b"PING") == 3
        connection.data_received(b"+PONG\r\n:2\r\n")  # replies may come split...
        connection.data_received(b"$1\r\nx\r\n")
        assert [f.result() for f in futures] == ["PONG", 2, "x"]  # ...and match in order
        assert failures == []
        lost = connection.send(b"*1\r\n$4\r\nPING\r\n")
        connection.connection_lost(None)
        assert isinstance(lost.exception(), ConnectionError)
        assert len(failures) == 1  # a command was waiting: the store is told, once

    asyncio.run(scenario())


def test_a_connection_that_stops_answering_fails_its_commands_after_the_timeout():
    async def scenario():
        failures: list[BaseException] = []
        connection = _Connection(asyncio.get_running_loop(), 0.2, failures.append)
        transport = _Transport()
        connection.connection_made(transport)
        first = connection.send(b"*1\r\n$4\r\nPING\r\n")
        await asyncio.sleep(0.1)
        second = connection.send(b"*1\r\n$4\r\nPING\r\n")
        connection.data_received(b"+PONG\r\n")  # the first answered in time
        await asyncio.sleep(0.15)
        assert first.result() == "PONG" and not second.done()  # its own timeout runs
        await asyncio.sleep(0.1)
        assert isinstance(second.exception(), TimeoutError)
        assert transport.aborted and [type(f) for f in failures] == [TimeoutError]
        idle = _Connection(asyncio.get_running_loop(), 0.2, failures.append)
        idle.connection_made(_Transport())
        idle.connection_lost(None)  # Redis closed an idle connection: no failure
        assert len(failures) == 1

    asyncio.run(scenario())


def test_concurrent_requests_on_a_redis_server_are_each_counted_exactly_once(redis_url):
    with ServerProcess("--store", redis_url, "--rate-limit", "40/min") as server:

        def one(_):
            return requests.post(
                server.url + "/api/intelligence/analyze",
                data=BODY,
                headers={"Content-Type": "application/json", "X-API-Key": DEFAULT_KEY},
                timeout=10,
            )

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one, range(50)))
    allowed = [a for a in answers if a.status_code == 200]
    assert len(allowed) == 40
    assert sum(a.status_code == 429 for a in answers) == 10
    remaining = sorted(int(a.headers["X-RateLimit-Remaining"]) for a in allowed)
    assert remaining == list(range(40))  # every count seen once: none lost, none twice
