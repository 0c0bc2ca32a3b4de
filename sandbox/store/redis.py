"""The Redis store: the same state as the memory store, shared by processes and containers.

Several sandbox workers (or replicas behind a load balancer) pointed at one Redis see
the same ingested data, journal, clock, fault rules and counters. Writes that must be
atomic (a batch of orders, a counter bump, a rule update) run as Lua scripts, so they
stay atomic across processes. Keys live under one prefix (default ``quimbi:``).

Every public method is guarded (see the end of the module): a Redis that cannot be
reached or does not answer in time becomes ``errors.StoreUnavailable`` (503) and is
tracked by ``sandbox.store.outage``. The client never retries by itself: a retried Lua
script whose reply was lost would run twice, and retries with backoff would hold the
event loop; the caller's client retries on the 503 instead.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from sandbox.store.outage import Outage, store_name

# Short, so a request during an outage is answered 503 quickly rather than held; a URL's
# own ?socket_timeout= / ?socket_connect_timeout= wins (redis-py reads them from the URL).
CONNECT_TIMEOUT_SECONDS = 1.0
SOCKET_TIMEOUT_SECONDS = 2.0
# ConnectionError covers refused, reset, unresolvable, LOADING (a restarting Redis
# reading its data back) and a rejected password.
_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)

_ADD_ORDERS = """
local fresh = {}
for i = 3, #ARGV, 3 do
  local id, cid, doc = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HSETNX', KEYS[1], id, doc) == 1 then
    redis.call('RPUSH', KEYS[2], id)
    redis.call('RPUSH', ARGV[1] .. cid, id)
    redis.call('SADD', KEYS[3], cid)
    table.insert(fresh, id)
  end
end
if #fresh > 0 then redis.call('SADD', KEYS[4], ARGV[2]) end
return fresh
"""

_ADD_INTERACTIONS = """
for i = 3, #ARGV, 2 do
  local cid, doc = ARGV[i], ARGV[i + 1]
  redis.call('RPUSH', KEYS[1], doc)
  redis.call('RPUSH', ARGV[1] .. cid, doc)
  redis.call('SADD', KEYS[2], cid)
end
redis.call('SADD', KEYS[3], ARGV[2])
return (#ARGV - 2) / 2
"""

_INCR = """
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[2] ~= '' and redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
"""

# KEYS: the list, then the counters; ARGV: item ('' deletes), keep, ttl ms, then each by.
_EXCHANGE = """
local values = {}
for i = 2, #KEYS do
  values[i - 1] = redis.call('INCRBY', KEYS[i], ARGV[i + 2])
end
local old = redis.call('LRANGE', KEYS[1], 0, -1)
if ARGV[1] == '' then
  redis.call('DEL', KEYS[1])
else
  local tag = 0
  if #KEYS > 1 then tag = values[#KEYS - 1] end
  redis.call('RPUSH', KEYS[1], tag .. ' ' .. ARGV[1])
  redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {values, old}
"""

_ADD_RULE = """
redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""

_REMOVE_RULE = """
redis.call('LREM', KEYS[1], 0, ARGV[1])
return redis.call('HDEL', KEYS[2], ARGV[1])
"""


def _glob_escape(text: str) -> str:
    """``text`` matched literally inside a Redis SCAN pattern."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class RedisStore:
    """Implements both :class:`sandbox.store.base.Store` and ``Counters``."""

    shares_counters = True  # the app keeps rate limits and fault counts here too

    def __init__(self, url: str, prefix: str = "quimbi:") -> None:
        self._redis = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        password = urlsplit(url).password
        self.outage = Outage(store_name(url), secret=unquote(password) if password else None)
        self._prefix = prefix
        self._add_orders = self._redis.register_script(_ADD_ORDERS)
        self._add_interactions = self._redis.register_script(_ADD_INTERACTIONS)
        self._incr = self._redis.register_script(_INCR)
        self._exchange = self._redis.register_script(_EXCHANGE)
        self._add_rule = self._redis.register_script(_ADD_RULE)
        self._remove_rule = self._redis.register_script(_REMOVE_RULE)

    def check_reachable(self) -> None:
        """At start-up: redis's own error if Redis cannot be reached. Not guarded, so a
        store never reached is a start-up error rather than an outage."""
        self._redis.ping()

    def ping(self) -> None:
        self._redis.ping()

    def _t(self, tenant: str, *parts: str) -> str:
        return f"{self._prefix}t:{tenant}:" + ":".join(parts)

    def _delete_matching(self, pattern: str) -> int:
        deleted = 0
        batch: list[str] = []
        for key in self._redis.scan_iter(match=pattern, count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += self._redis.delete(*batch)
                batch = []
        if batch:
            deleted += self._redis.delete(*batch)
        return deleted

    # Ingested data.

    def add_orders(self, tenant: str, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
        args: list[str] = [self._t(tenant, "co", ""), tenant]
        by_id = {}
        for order in orders:
            args += [order["order_id"], order["customer_id"], _dumps(order)]
            by_id.setdefault(order["order_id"], order)
        keys = [
            self._t(tenant, "orders"),
            self._t(tenant, "order_seq"),
            self._t(tenant, "customers"),
            f"{self._prefix}tenants",
        ]
        fresh = self._add_orders(keys=keys, args=args)
        return [by_id[order_id] for order_id in fresh]

    def add_interactions(self, tenant: str, interactions: list[dict[str, Any]]) -> int:
        if not interactions:
            return 0
        args: list[str] = [self._t(tenant, "ci", ""), tenant]
        for interaction in interactions:
            args += [interaction["customer_id"], _dumps(interaction)]
        keys = [
            self._t(tenant, "interactions"),
            self._t(tenant, "customers"),
            f"{self._prefix}tenants",
        ]
        return int(self._add_interactions(keys=keys, args=args))

    def orders_for(self, tenant: str, customer_id: str) -> list[dict[str, Any]]:
        ids = self._redis.lrange(self._t(tenant, "co", customer_id), 0, -1)
        if not ids:
            return []
        return [json.loads(doc) for doc in self._redis.hmget(self._t(tenant, "orders"), ids)]

    def interactions_for(self, tenant: str, customer_id: str) -> list[dict[str, Any]]:
        docs = self._redis.lrange(self._t(tenant, "ci", customer_id), 0, -1)
        return [json.loads(doc) for doc in docs]

    def is_known(self, tenant: str, customer_id: str) -> bool:
        return bool(self._redis.sismember(self._t(tenant, "customers"), customer_id))

    def known_customers(self, tenant: str) -> set[str]:
        return set(self._redis.smembers(self._t(tenant, "customers")))

    def tenants(self) -> set[str]:
        return set(self._redis.smembers(f"{self._prefix}tenants"))

    def export_tenant(self, tenant: str) -> dict[str, list[dict[str, Any]]]:
        ids = self._redis.lrange(self._t(tenant, "order_seq"), 0, -1)
        orders = self._redis.hmget(self._t(tenant, "orders"), ids) if ids else []
        interactions = self._redis.lrange(self._t(tenant, "interactions"), 0, -1)
        return {
            "orders": [json.loads(doc) for doc in orders],
            "interactions": [json.loads(doc) for doc in interactions],
        }

    def replace_tenant(
        self, tenant: str, orders: list[dict[str, Any]], interactions: list[dict[str, Any]]
    ) -> None:
        self.reset(tenant)
        if orders:
            self.add_orders(tenant, orders)
        self.add_interactions(tenant, interactions)

    def reset(self, tenant: str | None = None) -> None:
        if tenant is None:
            self._delete_matching(_glob_escape(self._prefix) + "*")
        else:
            self._delete_matching(_glob_escape(self._t(tenant, "")) + "*")
            self._redis.srem(f"{self._prefix}tenants", tenant)

    # Journal and shared values.

    def revision(self, tenant: str) -> None:
        return None  # other processes write too; asking Redis would cost what it saves

    def journal_append(self, entry: dict[str, Any], limit: int) -> None:
        key = f"{self._prefix}journal"
        pipe = self._redis.pipeline(transaction=False)
        pipe.rpush(key, _dumps(entry))
        pipe.ltrim(key, -limit, -1)
        pipe.execute()

    def journal(self) -> list[dict[str, Any]]:
        return [json.loads(doc) for doc in self._redis.lrange(f"{self._prefix}journal", 0, -1)]

    def get_value(self, name: str) -> dict[str, Any] | None:
        doc = self._redis.get(f"{self._prefix}v:{name}")
        return json.loads(doc) if doc is not None else None

    def set_value(self, name: str, value: dict[str, Any]) -> None:
        self._redis.set(f"{self._prefix}v:{name}", _dumps(value))

    # Counters and fault rules (the Counters interface of sandbox.store.counters).

    def incr(self, key: str, by: int = 1, ttl_seconds: float | None = None) -> int:
        ttl = "" if ttl_seconds is None else str(max(int(ttl_seconds * 1000), 1))
        return int(self._incr(keys=[f"{self._prefix}c:{key}"], args=[by, ttl]))

    def get(self, key: str) -> int:
        value = self._redis.get(f"{self._prefix}c:{key}")
        return int(value) if value is not None else 0

    def delete(self, prefix: str) -> int:
        return self._delete_matching(_glob_escape(f"{self._prefix}c:{prefix}") + "*")

    def counts(self, prefix: str) -> dict[str, int]:
        start = len(f"{self._prefix}c:")
        pattern = _glob_escape(f"{self._prefix}c:{prefix}") + "*"
        keys = list(self._redis.scan_iter(match=pattern, count=500))
        found: dict[str, int] = {}
        for at in range(0, len(keys), 500):
            batch = keys[at : at + 500]
            for key, value in zip(batch, self._redis.mget(batch), strict=True):
                if value is not None:  # expired between the scan and the read
                    found[key[start:]] = int(value)
        return found

    def exchange(
        self,
        key: str,
        item: str | None,
        keep: int,
        ttl_seconds: float,
        counts: Sequence[tuple[str, int]] = (),
    ) -> tuple[list[int], list[str]]:
        counters = f"{self._prefix}c:"
        values, old = self._exchange(
            keys=[counters + key, *(counters + name for name, _ in counts)],
            args=[item or "", keep, max(int(ttl_seconds * 1000), 1), *(by for _, by in counts)],
        )
        return [int(v) for v in values], list(old)

    def lists_pending(self) -> bool:
        return True

    def add_rule(self, rule: dict[str, Any]) -> None:
        self._add_rule(
            keys=[f"{self._prefix}rule_ids", f"{self._prefix}rules"],
            args=[rule["id"], _dumps(rule)],
        )

    def rules(self) -> list[dict[str, Any]]:
        ids = self._redis.lrange(f"{self._prefix}rule_ids", 0, -1)
        if not ids:
            return []
        docs = self._redis.hmget(f"{self._prefix}rules", ids)
        return [json.loads(doc) for doc in docs if doc is not None]

    def remove_rule(self, rule_id: str) -> bool:
        removed = self._remove_rule(
            keys=[f"{self._prefix}rule_ids", f"{self._prefix}rules"], args=[rule_id]
        )
        return bool(removed)

    def clear_rules(self) -> int:
        count = self._redis.llen(f"{self._prefix}rule_ids")
        self._redis.delete(f"{self._prefix}rule_ids", f"{self._prefix}rules")
        return int(count)


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _guarded(method: _Method) -> _Method:
    @functools.wraps(method)
    def call(self: RedisStore, *args: Any, **kwargs: Any) -> Any:
        outage = self.outage
        if outage.down_since is not None:
            outage.refuse_while_fresh()
        try:
            result = method(self, *args, **kwargs)
        except _UNREACHABLE as exc:
            raise outage.failed(exc) from None
        if outage.down_since is not None:
            outage.answered()
        return result

    return call  # type: ignore[return-value]


# Every public method that talks to Redis, so one added later cannot be forgotten
# (tests/test_store_outage.py checks this too). Not revision(), which never asks Redis:
# its "success" would end an outage that is still going on.
_UNGUARDED = {"check_reachable", "revision", "lists_pending"}
for _name, _member in list(vars(RedisStore).items()):
    if inspect.isfunction(_member) and not _name.startswith("_") and _name not in _UNGUARDED:
        setattr(RedisStore, _name, _guarded(_member))
