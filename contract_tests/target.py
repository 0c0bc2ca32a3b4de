"""The server under test, as the checks see it: one HTTP session, paced and recorded.

Owns the kit's options (keys, seed, example counts, rate), the request pacing that
keeps a run under the target's rate limit, and the per-run token that makes customer
and order ids unique, so a run against a shared staging tenant never collides with
another. Checks call the server only through :meth:`Target.call` or :attr:`session`.
"""

from __future__ import annotations

import ipaddress
import json
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import requests
from hypothesis import HealthCheck, Phase, settings

from contract_tests.registry import Exchange
from sandbox.spec import Contract, load_contract

# Below the documented 100 requests/minute per key, with room for a client's own traffic:
# the pace for a remote target, and for any target that sends no rate-limit headers.
REMOTE_DEFAULT_RATE = 90.0
# The share of the key's limit the kit leaves to other clients (--rate-headroom).
DEFAULT_HEADROOM = 0.10
TIMEOUT_SECONDS = 30.0
# --max-wait: the longest one wait for a rate-limit window may be, and the most a run
# spends in all waiting out 429s, before a check is reported inconclusive.
MAX_RATE_LIMIT_WAIT_SECONDS = 180.0
# The target's clock and ours disagree a little; a window is taken as reset this late.
RESET_SLACK_SECONDS = 1.0
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
# The sandbox marks the answers it faked; their 429s are answers to judge.
INJECTED_HEADER = "X-Sandbox-Fault-Injected"


def is_local(base_url: str) -> bool:
    host = urlparse(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_rate(text: str) -> float | None:
    """``90/min``, ``90`` or ``0``/``off`` (unlimited) -> requests per minute or None."""
    cleaned = text.strip().lower().removesuffix("/min").removesuffix("/m")
    if cleaned in {"0", "off", "none", "unlimited"}:
        return None
    rate = float(cleaned)
    if rate <= 0:
        raise ValueError("rate must be positive (or 0/off for unlimited)")
    return rate


@dataclass(frozen=True)
class Options:
    base_url: str
    api_key: str
    second_api_key: str | None = None
    seed: int | None = None
    max_examples: int = 25
    read_only: bool = False
    select: tuple[str, ...] = ()
    rate_per_minute: float | None = None  # the upper bound; None: none
    stateful_steps: int = 6
    # The pace while the target has sent no X-RateLimit-* headers; None: unlimited.
    fallback_rate_per_minute: float | None = REMOTE_DEFAULT_RATE
    rate_headroom: float = DEFAULT_HEADROOM
    max_wait: float = MAX_RATE_LIMIT_WAIT_SECONDS
    max_requests: int | None = None  # a hard cap on what the run sends

    @classmethod
    def build(cls, rate: str | None = None, **values: Any) -> Options:
        """Options with the documented defaults: a random seed, at most 90/min to a remote
        target, and 90/min to any target until it shows its rate-limit headers."""
        if values.get("seed") is None:
            values["seed"] = random.SystemRandom().randrange(2**32)
        base_url = values["base_url"].rstrip("/")
        values["base_url"] = base_url
        if rate is not None:
            # An explicit rate is both the bound and the pace without headers (0: neither).
            values["rate_per_minute"] = values["fallback_rate_per_minute"] = parse_rate(rate)
        elif not is_local(base_url):
            values["rate_per_minute"] = REMOTE_DEFAULT_RATE
        return cls(**values)


class Throttled(BaseException):  # noqa: N818  (a verdict, not an error)
    """The target's rate limit (or --max-requests) stopped a check before it finished.

    A BaseException on purpose: it must cross Hypothesis and schemathesis, which take
    any Exception for the check's own failure (and replay it), so that the runner can
    report the check inconclusive instead of failed.
    """

    def __init__(self, reason: str, exchange: Exchange | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.exchange = exchange
        self.curl = None  # "last 429: curl ..." (or the last answer that showed the limit)
        if exchange is not None:
            what = "last 429" if exchange.status == 429 else f"last answer ({exchange.status})"
            self.curl = f"{what}: {exchange.curl()}"


@dataclass
class Window:
    """What the target's X-RateLimit-* headers said about one key, last time."""

    limit: int
    remaining: int
    reset: float  # Unix seconds


def read_window(headers: Mapping[str, str]) -> Window | None:
    values = [str(headers.get(name, "")).strip() for name in RATE_HEADERS]
    if not all(value.isdigit() for value in values):
        return None
    limit, remaining, reset = (int(value) for value in values)
    return Window(limit, remaining, float(reset)) if limit > 0 else None


class Pacer:
    """Spaces requests (thread-safe): never faster than the --rate bound, and never so
    fast that a key's X-RateLimit-Remaining falls into the headroom kept for others.

    While a key has headroom left, requests go at the bound's pace; when it has none,
    the next request waits for the window's X-RateLimit-Reset. A wait longer than
    ``max_wait`` is not waited: it raises :class:`Throttled`. A target that has sent no
    headers yet is paced at the fallback rate.
    """

    def __init__(
        self,
        rate_per_minute: float | None,
        fallback_per_minute: float | None = None,
        headroom: float = DEFAULT_HEADROOM,
        max_wait: float = MAX_RATE_LIMIT_WAIT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.interval = 60.0 / rate_per_minute if rate_per_minute else 0.0
        self.fallback_interval = 60.0 / fallback_per_minute if fallback_per_minute else 0.0
        self.headroom = headroom
        self.max_wait = max_wait
        self.clock = clock
        self.windows: dict[str | None, Window] = {}
        self.waited = 0.0  # seconds spent waiting for windows to reset
        self.on_wait: Callable[[float, str], None] | None = None  # (seconds, why)
        self._last: dict[str | None, Exchange] = {}
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self, window: Window) -> int:
        return math.ceil(self.headroom * window.limit)

    def current_interval(self) -> float:
        return self.interval if self.windows else max(self.interval, self.fallback_interval)

    def wait(self, key: str | None = None) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            window = self.windows.get(key)
            pause, why = 0.0, ""
            if window is not None and window.remaining <= self.reserve(window):
                pause = window.reset + RESET_SLACK_SECONDS - self.clock()
                if pause > self.max_wait:
                    raise Throttled(self._exhausted(window, pause), self._last.get(key))
                why = (
                    f"X-RateLimit-Remaining {window.remaining}: the {self.headroom:.0%}"
                    " headroom kept for other clients, until the window resets"
                )
            if pause > 0:
                start = max(start, now + pause)
                self.waited += pause
                # Reset: the next answer says what the new window holds.
                self.windows[key] = Window(window.limit, window.limit, window.reset + 60)
            elif window is not None:
                window.remaining -= 1  # until the answer says better
            self._next = start + self.current_interval()
        if pause > 0 and self.on_wait is not None:
            self.on_wait(start - now, why)
        if start > now:
            time.sleep(start - now)

    def _exhausted(self, window: Window, pause: float) -> str:
        reset = time.strftime("%H:%M:%S UTC", time.gmtime(window.reset))
        return (
            f"X-RateLimit-Remaining {window.remaining}, within the {self.reserve(window)} kept"
            f" for other clients, until the window resets at {reset} ({pause:.0f}s away):"
            f" longer than --max-wait {self.max_wait:g}s"
        )

    def observe(self, key: str | None, headers: Mapping[str, str], exchange: Exchange) -> None:
        """Learn the key's window from an answer's X-RateLimit-* headers (an injected
        fault's headers describe the fault, not the key)."""
        window = read_window(headers)
        if window is None or INJECTED_HEADER in headers:
            return
        with self._lock:
            self.windows[key] = window
            previous = self._last.get(key)
            if exchange.status == 429 or previous is None or previous.status != 429:
                self._last[key] = exchange  # a 429 is what a reader wants to replay


class PacedSession(requests.Session):
    """A requests session that waits for the pacer, counts what it sent, waits out the
    target's own 429s (within the budget) and stops at --max-requests."""

    def __init__(self, pacer: Pacer, max_requests: int | None = None) -> None:
        super().__init__()
        self.pacer = pacer
        self.max_requests = max_requests
        self.sent = 0
        self.waited_429 = 0.0  # seconds spent waiting out the target's 429s
        self.paths: Counter[str] = Counter()  # what was called, e.g. to prove --read-only

    @property
    def waited(self) -> float:
        """Seconds spent waiting for the target's rate limit: windows and 429s."""
        return self.pacer.waited + self.waited_429

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT_SECONDS)
        key = request.headers.get("X-API-Key")
        while True:
            if self.max_requests is not None and self.sent >= self.max_requests:
                raise Throttled(f"--max-requests {self.max_requests} reached")
            self.pacer.wait(key)
            self.sent += 1
            self.paths[urlparse(request.url or "").path] += 1
            response = super().send(request, **kwargs)
            exchange = Exchange.from_prepared(request, response.status_code, response.text)
            self.pacer.observe(key, response.headers, exchange)
            pause = throttle_pause(response)
            if pause is None:
                return response
            # The kit's own throttling (the key is spent, other clients included): wait as
            # told and ask again; past the budget the check is inconclusive, not failed.
            if self.waited_429 + pause > self.pacer.max_wait:
                raise Throttled(
                    f"429 with Retry-After {pause:g}s after {self.waited_429:.0f}s of waiting"
                    f" out 429s: past --max-wait {self.pacer.max_wait:g}s",
                    exchange,
                )
            self.waited_429 += pause
            if self.pacer.on_wait is not None:
                self.pacer.on_wait(pause, "429 RATE_LIMIT_EXCEEDED, as its Retry-After says")
            time.sleep(pause)


def throttle_pause(response: requests.Response) -> float | None:
    """Seconds to wait when the answer is the target's rate limit speaking, else None.

    Only a 429 with the limit's signature: a whole-seconds Retry-After and no request
    left (X-RateLimit-Remaining 0, or no such header). An injected 429
    (X-Sandbox-Fault-Injected) or one with a malformed Retry-After is an answer to judge.
    """
    headers = response.headers
    if response.status_code != 429 or INJECTED_HEADER in headers:
        return None
    retry_after = headers.get("Retry-After", "").strip()
    if not retry_after.isdigit():
        return None
    if headers.get("X-RateLimit-Remaining", "0").strip() != "0":
        return None
    return float(retry_after)


@dataclass
class Reply:
    status: int
    headers: requests.structures.CaseInsensitiveDict
    body: Any  # parsed JSON, or None when the body is not JSON
    text: str
    exchange: Exchange


@dataclass
class Target:
    options: Options
    contract: Contract = field(default_factory=load_contract)
    session: PacedSession = field(init=False)
    run_token: str = field(init=False)
    cache: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        options = self.options
        pacer = Pacer(
            options.rate_per_minute,
            options.fallback_rate_per_minute,
            options.rate_headroom,
            options.max_wait,
        )
        self.session = PacedSession(pacer, options.max_requests)
        # Ids made by this run carry the token, so reruns and parallel runs never collide:
        # drawn afresh each run (from the seed, a rerun with the same --seed reused every
        # customer and order id of the run before it against the same server).
        self.run_token = f"qk{random.SystemRandom().randrange(16**8):08x}"

    @property
    def base_url(self) -> str:
        return self.options.base_url

    def path_of(self, operation_id: str) -> tuple[str, str]:
        op = self.contract.operation(operation_id)
        return op.method, op.path

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = "default",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Send ``body`` as JSON; ``key="default"`` uses the run's key, None sends none."""
        sent_headers = dict(headers or {})
        data = None
        if body is not None:
            sent_headers.setdefault("Content-Type", "application/json")
            data = json.dumps(body).encode("utf-8")
        return self.call_raw(method, path, data, key=key, headers=sent_headers)

    def call_raw(
        self,
        method: str,
        path: str,
        data: bytes | None,
        *,
        key: str | None = "default",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Send exactly these bytes (for malformed bodies and wrong content types)."""
        sent_headers = dict(headers or {})
        if key == "default":
            key = self.options.api_key
        if key is not None:
            sent_headers["X-API-Key"] = key
        request = requests.Request(method, self.base_url + path, headers=sent_headers, data=data)
        response = self.session.send(self.session.prepare_request(request))
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
        return Reply(
            status=response.status_code,
            headers=response.headers,
            body=parsed,
            text=response.text,
            exchange=Exchange.from_prepared(response.request, response.status_code, response.text),
        )

    def hypothesis_settings(self, max_examples: int | None = None, **extra: Any) -> settings:
        """One Hypothesis profile for every layer: seeded by the run, no database, no
        deadline (the network sets the pace), and no shrinking hunts across a slow target."""
        return settings(
            max_examples=max_examples or self.options.max_examples,
            deadline=None,
            database=None,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
            **extra,
        )
