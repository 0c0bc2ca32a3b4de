"""The server under test, as the checks see it: one HTTP session, paced and recorded.

Owns the kit's options (keys, seed, example counts, rate), the request pacing that
keeps a run under the target's rate limit, and the per-run token that makes customer
and order ids unique, so a run against a shared staging tenant never collides with
another. Checks call the server only through :meth:`Target.call` or :attr:`session`.
"""

from __future__ import annotations

import ipaddress
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import requests
from hypothesis import HealthCheck, Phase, settings

from contract_tests.registry import Exchange
from sandbox.spec import Contract, load_contract

# Below the documented 100 requests/minute per key, with room for a client's own traffic.
REMOTE_DEFAULT_RATE = 90.0
TIMEOUT_SECONDS = 30.0
# How long one run may spend waiting out a target's 429s before reporting them as they are.
MAX_RATE_LIMIT_WAIT_SECONDS = 180.0


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
    rate_per_minute: float | None = None  # None: unlimited
    stateful_steps: int = 6

    @classmethod
    def build(cls, rate: str | None = None, **values: Any) -> Options:
        """Options with the documented defaults: a random seed, and a rate below 100/min
        unless the target is local."""
        if values.get("seed") is None:
            values["seed"] = random.SystemRandom().randrange(2**32)
        base_url = values["base_url"].rstrip("/")
        values["base_url"] = base_url
        if rate is not None:
            values["rate_per_minute"] = parse_rate(rate)
        elif not is_local(base_url):
            values["rate_per_minute"] = REMOTE_DEFAULT_RATE
        return cls(**values)


class Pacer:
    """Spaces requests at least 60/rate seconds apart (thread-safe)."""

    def __init__(self, rate_per_minute: float | None) -> None:
        self.interval = 60.0 / rate_per_minute if rate_per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


class PacedSession(requests.Session):
    """A requests session that waits for the pacer and counts what it sent."""

    def __init__(self, pacer: Pacer) -> None:
        super().__init__()
        self.pacer = pacer
        self.sent = 0
        self.waited = 0.0  # seconds spent waiting out the target's 429s
        self.paths: Counter[str] = Counter()  # what was called, e.g. to prove --read-only

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT_SECONDS)
        while True:
            self.pacer.wait()
            self.sent += 1
            self.paths[urlparse(request.url or "").path] += 1
            response = super().send(request, **kwargs)
            pause = self._retry_after(response)
            if pause is None:
                return response
            # Over the target's rate limit: wait as told and ask again, so a throttled
            # run reports drift, not the limit (no check provokes a 429 on purpose).
            self.waited += pause
            time.sleep(pause)

    def _retry_after(self, response: requests.Response) -> float | None:
        if response.status_code != 429 or "X-Sandbox-Fault-Injected" in response.headers:
            return None
        try:
            pause = float(response.headers.get("Retry-After", ""))
        except ValueError:
            return None
        if pause < 0 or self.waited + pause > MAX_RATE_LIMIT_WAIT_SECONDS:
            return None
        return pause


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
        self.session = PacedSession(Pacer(self.options.rate_per_minute))
        # Ids made by this run carry the token, so reruns and parallel runs never collide.
        self.run_token = f"qk{random.Random(self.options.seed).randrange(16**8):08x}"

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
