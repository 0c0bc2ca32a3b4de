"""Rate limits with a fake clock: the windows, Retry-After, isolation, and the headers."""

from __future__ import annotations

import pytest

from sandbox.app import create_app
from sandbox.ratelimit import (
    DEFAULT_LIMITS,
    Limits,
    RateLimiter,
    RateLimitSyntaxError,
    parse_rate_limit,
)
from sandbox.store.counters import MemoryCounters

ANALYZE = "/api/intelligence/analyze"
T0 = 1_700_000_010.0  # 30 s into a minute, which ends at 1_700_000_040


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(clock: FakeClock, limits: Limits | None = DEFAULT_LIMITS) -> RateLimiter:
    return RateLimiter(MemoryCounters(now=clock), limits, now=clock)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("off", None),
        ("default", Limits(100, 1000)),
        ("5/min,50/hour", Limits(5, 50)),
        ("50/hour, 5/min", Limits(5, 50)),
        ("7/min", Limits(7, 1000)),
    ],
)
def test_parse_rate_limit(text, expected):
    assert parse_rate_limit(text) == expected


@pytest.mark.parametrize("text", ["", "fast", "0/min", "5/day", "5/min,6/min", "-1/hour"])
def test_parse_rate_limit_rejects_nonsense(text):
    with pytest.raises(RateLimitSyntaxError):
        parse_rate_limit(text)


def test_request_101_in_a_minute_is_refused_until_the_minute_ends():
    clock = FakeClock()
    limits = limiter(clock)
    quotas = [limits.admit("k1") for _ in range(100)]
    assert all(q.allowed for q in quotas)
    assert [q.remaining for q in quotas[:3]] == [99, 98, 97]
    assert quotas[-1].remaining == 0
    assert {q.reset for q in quotas} == {1_700_000_040}

    clock.now += 5.5  # 35.5 s into the minute: 24.5 s left
    refused = limits.admit("k1")
    assert (refused.allowed, refused.remaining, refused.retry_after) == (False, 0, 25)
    assert refused.reset == 1_700_000_040

    clock.now = 1_700_000_039.999
    assert limits.admit("k1").retry_after == 1  # never 0, always a whole second
    clock.now = 1_700_000_040.0
    freed = limits.admit("k1")
    assert freed.allowed and freed.remaining == 99


def test_refused_requests_do_not_count():
    clock = FakeClock()
    limits = limiter(clock, Limits(2, 1000))
    limits.admit("k")
    limits.admit("k")
    for _ in range(50):
        assert not limits.admit("k").allowed
    clock.now += 60
    # The hour window holds the 2 accepted requests only, not the 50 refused ones.
    assert limits.admit("k").allowed
    assert limits.admit("k").remaining == 0  # minute: 2 of 2 used
    clock.now += 60
    assert limits.admit("k").remaining == 1


def test_keys_are_independent():
    clock = FakeClock()
    limits = limiter(clock, Limits(3, 1000))
    for _ in range(3):
        limits.admit("alpha")
    assert not limits.admit("alpha").allowed
    beta = limits.admit("beta")
    assert beta.allowed and beta.remaining == 2


def test_hour_limit_refuses_across_minutes_and_reports_the_hour_window():
    clock = FakeClock(3600 * 500_000 + 10.0)  # 10 s into an hour
    limits = limiter(clock, Limits(10, 25))
    for minute in range(3):
        for _ in range(10 if minute < 2 else 5):
            quota = limits.admit("k")
            assert quota.allowed
        clock.now += 60
    # 25 used this hour: the hour is now the tighter window.
    refused = limits.admit("k")
    hour_end = 3600 * 500_001
    assert not refused.allowed
    assert refused.reset == hour_end
    assert refused.retry_after == hour_end - int(clock.now)
    clock.now = hour_end
    assert limits.admit("k").allowed


def test_remaining_reports_the_tighter_window():
    clock = FakeClock()
    limits = limiter(clock, Limits(10, 12))
    for _ in range(9):
        limits.admit("k")
    clock.now += 60
    quota = limits.admit("k")  # minute: 1 of 10, hour: 10 of 12
    assert (quota.limit, quota.remaining) == (10, 2)
    assert quota.reset == (int(clock.now) // 3600 + 1) * 3600


def test_off_counts_nothing_and_reports_the_full_quota():
    clock = FakeClock()
    limits = limiter(clock, None)
    for _ in range(500):
        quota = limits.admit("k")
    assert quota.allowed and (quota.limit, quota.remaining) == (100, 100)


def test_reset_forgets_one_key():
    clock = FakeClock()
    limits = limiter(clock, Limits(1, 1000))
    limits.admit("a")
    limits.admit("b")
    limits.reset("a")
    assert limits.admit("a").allowed
    assert not limits.admit("b").allowed


# Through the app, with the clock injected.


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def limited_app(clock):
    return create_app(seed=7, rate_limit="5/min,8/hour", rate_limit_clock=clock)


def analyze(client, key="qpk_test_sandbox", customer_id="test_customer_new", **headers):
    return client.post(
        ANALYZE, json={"customer_id": customer_id}, headers={"X-API-Key": key, **headers}
    )


def test_app_refuses_over_the_limit_with_the_documented_429(limited_app, clock):
    client = limited_app.test_client()
    remaining = [int(analyze(client).headers["X-RateLimit-Remaining"]) for _ in range(5)]
    assert remaining == [4, 3, 2, 1, 0]
    clock.now += 7.2
    response = analyze(client)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "23"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert response.headers["X-RateLimit-Reset"] == "1700000040"
    assert response.get_json()["error"] == {
        "code": "RATE_LIMIT_EXCEEDED",
        "message": "Rate limit exceeded. Retry after 23 seconds.",
        "details": {"retry_after_seconds": 23},
    }
    assert "X-Sandbox-Fault-Injected" not in response.headers  # a real limit, not a fault
    # Another key of the same tenant has its own windows.
    assert analyze(client, key="test_key_12345").status_code == 200
    clock.now = 1_700_000_040
    assert analyze(client).status_code == 200


def test_errors_after_authentication_carry_the_headers_401_does_not(limited_app):
    client = limited_app.test_client()
    not_found = analyze(client, customer_id="test_customer_not_found")
    invalid = client.post(ANALYZE, json={"customer_id": 5}, headers={"X-API-Key": "test_key_12345"})
    forbidden = client.post(
        "/api/data/ingest_orders",
        json={"source": "x", "orders": []},
        headers={"X-API-Key": "qpk_test_readonly"},
    )
    for response, status in [(not_found, 404), (invalid, 422), (forbidden, 403)]:
        assert response.status_code == status
        assert response.headers["X-RateLimit-Remaining"] == "4"
    for key in [None, "qpk_nope", "qpk_test_expired"]:
        response = client.post(ANALYZE, json={}, headers={"X-API-Key": key} if key else {})
        assert response.status_code == 401
        assert not any(h.startswith("X-RateLimit") for h in response.headers.keys())


def test_magic_ratelimited_key_always_answers_429(limited_app, clock):
    client = limited_app.test_client()
    for _ in range(3):
        response = analyze(client, key="qpk_test_ratelimited")
        assert response.status_code == 429
        assert response.get_json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
        assert response.headers["Retry-After"] == "30"
        assert response.headers["X-RateLimit-Remaining"] == "0"
        assert response.headers["X-Sandbox-Fault-Injected"] == "429; source=key"
    clock.now += 3600
    assert analyze(client, key="qpk_test_ratelimited").status_code == 429
    # ... and it uses up nobody's quota.
    assert analyze(client).headers["X-RateLimit-Remaining"] == "4"
