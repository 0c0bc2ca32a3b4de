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
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from sandbox.store import redis_scripts as lua
from sandbox.store.outage import Outage, store_name
from sandbox.store.redis_ahead import AheadClient
from sandbox.store.redis_journal import JournalWriter
from sandbox.store.redis_wire import Wire

# Short, so a request during an outage is answered 503 quickly rather than held; a URL's
# own ?socket_timeout= / ?socket_connect_timeout= wins (redis-py reads them from the URL).
CONNECT_TIMEOUT_SECONDS = 1.0
SOCKET_TIMEOUT_SECONDS = 2.0
# ConnectionError covers refused, reset, unresolvable, LOADING (a restarting Redis
# reading its data back) and a rejected password.
_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)


def _glob_escape(text: str) -> str:
    """``text`` matched literally inside a Redis SCAN pattern."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _token() -> str:
    return uuid.uuid4().hex


class _View:
    """What one request reads, taken with its rate-limit counts in one round trip
    (:meth:`RedisStore.incr_many`): the request sees the store as it was then."""

    __slots__ = (
        "tenant",
        "rules_version",
        "clock",
        "revision",
        "cache_key",
        "lists",
        "customers",
    )

    def __init__(self, tenant: str, read: list[str]) -> None:
        rules_version, clock, epoch, revision, lists = (value or None for value in read)
        self.lists = lists is not None  # Counters.exchange lists of this tenant may be kept
        self.tenant = tenant
        self.rules_version = rules_version
        self.clock = clock
        # None: the tenant has no ingested data (every write sets a revision).
        self.revision = revision
        # For answers.AnswerCache: the epoch changes with a full reset.
        self.cache_key = (epoch, revision)
        self.customers: dict[str, tuple[int, list[str], list[str]]] = {}


_NO_DATA: tuple[int, list[str], list[str]] = (0, [], [])


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
        self._wire = Wire(self._redis)
        pool = self._redis.connection_pool
        kind = pool.connection_class.__name__
        self._ahead = (
            AheadClient(
                pool.connection_kwargs,
                unix=kind == "UnixDomainSocketConnection",
                timeout=pool.connection_kwargs.get("socket_timeout") or SOCKET_TIMEOUT_SECONDS,
                on_failure=self._ahead_failed,
                scripts=[lua.ADMIT],
            )
            if AheadClient.supports(kind)
            else None
        )
        script = self._redis.register_script
        self._add_orders = script(lua.ADD_ORDERS)
        self._add_interactions = script(lua.ADD_INTERACTIONS)
        self._customer = script(lua.CUSTOMER)
        self._incr = script(lua.INCR)
        self._admit = script(lua.ADMIT)
        self._exchange = script(lua.EXCHANGE)
        self._add_rule = script(lua.ADD_RULE)
        self._remove_rule = script(lua.REMOVE_RULE)
        self._clear_rules = script(lua.CLEAR_RULES)
        self._read_rules = script(lua.RULES)
        self._rule_keys = [f"{prefix}rule_ids", f"{prefix}rules", f"{prefix}rules_version"]
        # The rule documents as last read, with the version they were read at.
        self._rule_docs: tuple[str | None, list[str]] | None = None
        self._local = threading.local()  # .view: the running request's _View
        self._journal_writer = JournalWriter(self.append_journal_batch)

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
        self._local.view = None
        args: list[str] = [self._t(tenant, "co", ""), tenant, _token()]
        by_id = {}
        for order in orders:
            args += [order["order_id"], order["customer_id"], _dumps(order)]
            by_id.setdefault(order["order_id"], order)
        keys = [
            self._t(tenant, "orders"),
            self._t(tenant, "order_seq"),
            self._t(tenant, "customers"),
            f"{self._prefix}tenants",
            self._t(tenant, "rev"),
        ]
        fresh = self._add_orders(keys=keys, args=args)
        return [by_id[order_id] for order_id in fresh]

    def add_interactions(self, tenant: str, interactions: list[dict[str, Any]]) -> int:
        if not interactions:
            return 0
        self._local.view = None
        args: list[str] = [self._t(tenant, "ci", ""), tenant, _token()]
        for interaction in interactions:
            args += [interaction["customer_id"], _dumps(interaction)]
        keys = [
            self._t(tenant, "interactions"),
            self._t(tenant, "customers"),
            f"{self._prefix}tenants",
            self._t(tenant, "rev"),
        ]
        return int(self._add_interactions(keys=keys, args=args))

    def _customer_data(self, tenant: str, customer_id: str) -> tuple[int, list[str], list[str]]:
        """Known?, order docs, interaction docs: from the request's view, or one read."""
        view = getattr(self._local, "view", None)
        if view is not None and view.tenant == tenant:
            if view.revision is None:
                return _NO_DATA  # no read can find anything
            found = view.customers.get(customer_id)
            if found is not None:
                return found
        keys = [
            self._t(tenant, "customers"),
            self._t(tenant, "co", customer_id),
            self._t(tenant, "orders"),
            self._t(tenant, "ci", customer_id),
        ]
        known, orders, interactions = self._wire.script(self._customer, keys, [customer_id])
        found = (int(known), orders, interactions)
        if view is not None and view.tenant == tenant:
            view.customers[customer_id] = found
        return found

    def orders_for(self, tenant: str, customer_id: str) -> list[dict[str, Any]]:
        return [json.loads(doc) for doc in self._customer_data(tenant, customer_id)[1]]

    def interactions_for(self, tenant: str, customer_id: str) -> list[dict[str, Any]]:
        return [json.loads(doc) for doc in self._customer_data(tenant, customer_id)[2]]

    def is_known(self, tenant: str, customer_id: str) -> bool:
        return bool(self._customer_data(tenant, customer_id)[0])

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
        self._local.view = None
        self._journal_writer.flush()  # entries from before must not outlive a reset
        if tenant is None:
            self._delete_matching(_glob_escape(self._prefix) + "*")
            # Fresh tokens: what other processes kept from before must not match again.
            self._redis.mset({f"{self._prefix}epoch": _token(), self._rule_keys[2]: _token()})
        else:
            self._delete_matching(_glob_escape(self._t(tenant, "")) + "*")
            self._redis.srem(f"{self._prefix}tenants", tenant)
            self._redis.set(self._t(tenant, "rev"), _token())

    # Journal and shared values.

    def revision(self, tenant: str) -> tuple[str | None, str | None] | None:
        # Only from the request's view: asking Redis here would cost what a hit saves.
        view = getattr(self._local, "view", None)
        return view.cache_key if view is not None and view.tenant == tenant else None

    def end_request(self) -> None:
        self._local.view = None

    def journal_append(self, entry: dict[str, Any], limit: int) -> None:
        self._journal_writer.append(_dumps(entry), limit)  # written by its thread

    def append_journal_batch(self, docs: list[str], limit: int, bumps: dict[str, int]) -> None:
        key = f"{self._prefix}journal"
        commands: list[tuple[Any, ...]] = []
        if docs:
            commands += [("RPUSH", key, *docs), ("LTRIM", key, -limit, -1)]
        commands += [("INCRBY", f"{self._prefix}c:{name}", by) for name, by in bumps.items()]
        self._wire.pipeline(commands)

    def journal(self) -> list[dict[str, Any]]:
        self._journal_writer.flush()
        return [json.loads(doc) for doc in self._redis.lrange(f"{self._prefix}journal", 0, -1)]

    def get_value(self, name: str) -> dict[str, Any] | None:
        view = getattr(self._local, "view", None)
        if view is not None and name == "clock":
            doc = view.clock
        else:
            doc = self._redis.get(f"{self._prefix}v:{name}")
        return json.loads(doc) if doc is not None else None

    def set_value(self, name: str, value: dict[str, Any]) -> None:
        self._local.view = None
        self._redis.set(f"{self._prefix}v:{name}", _dumps(value))

    # Counters and fault rules (the Counters interface of sandbox.store.counters).

    def incr(self, key: str, by: int = 1, ttl_seconds: float | None = None) -> int:
        ttl = "" if ttl_seconds is None else str(max(int(ttl_seconds * 1000), 1))
        return int(self._wire.script(self._incr, [f"{self._prefix}c:{key}"], [by, ttl]))

    def _admit_call(
        self, items: Sequence[tuple[str, int, float | None]], tenant: str | None
    ) -> tuple[list[str], list[Any]]:
        counters = f"{self._prefix}c:"
        keys = [counters + key for key, _, _ in items]
        args: list[Any] = [len(items)]
        for _, by, ttl_seconds in items:
            args += [by, "" if ttl_seconds is None else max(int(ttl_seconds * 1000), 1)]
        if tenant is not None:
            keys += [
                self._rule_keys[2],
                f"{self._prefix}v:clock",
                f"{self._prefix}epoch",
                self._t(tenant, "rev"),
                f"{self._prefix}lists:{tenant}",
            ]
        return keys, args

    def incr_many(
        self,
        items: Sequence[tuple[str, int, float | None]],
        tenant: str | None = None,
        ahead: Any = None,
    ) -> list[int]:
        if ahead is not None:  # incr_many_ahead's reply for these very items
            values, read = ahead
        else:
            values, read = self._wire.script(self._admit, *self._admit_call(items, tenant))
        if tenant is not None:
            self._local.view = _View(tenant, read)
        return [int(v) for v in values]

    def incr_many_ahead(self, items: Sequence[tuple[str, int, float | None]], tenant: str) -> Any:
        """:meth:`incr_many`'s round trip sent now, on the event loop
        (``sandbox.store.redis_ahead``): the future of its reply, for
        ``incr_many(items, tenant, ahead=reply)`` (a reply that is an exception, or a
        future that fails, is no reply), or None when it can't be sent (no connection
        yet, or Redis known to be down): then that call makes it inline."""
        if self._ahead is None or self.outage.down_since is not None:
            return None
        return self._ahead.send(self._admit.sha, *self._admit_call(items, tenant))

    def _ahead_failed(self, exc: BaseException) -> None:
        self._wire.drop_idle()  # as the guard does: likely all gone with the one that failed
        self.outage.failed(exc)

    def close_ahead(self) -> None:
        if self._ahead is not None:
            self._ahead.close()

    def bump(self, keys: Sequence[str]) -> None:
        self._journal_writer.bump(keys)  # written by the journal's thread

    def get(self, key: str) -> int:
        value = self._redis.get(f"{self._prefix}c:{key}")
        return int(value) if value is not None else 0

    def delete(self, prefix: str) -> int:
        self._journal_writer.flush()  # a queued bump must not outlive the delete
        return self._delete_matching(_glob_escape(f"{self._prefix}c:{prefix}") + "*")

    def counts(self, prefix: str) -> dict[str, int]:
        self._journal_writer.flush()
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
        scope: str | None = None,
    ) -> tuple[list[int], list[str]]:
        counters = f"{self._prefix}c:"
        marker = f"{self._prefix}lists:{scope}" if scope is not None else ""
        values, old = self._wire.script(
            self._exchange,
            [counters + key, *(counters + name for name, _ in counts)],
            [
                item or "",
                keep,
                max(int(ttl_seconds * 1000), 1),
                marker,
                *(by for _, by in counts),
            ],
        )
        return [int(v) for v in values], list(old)

    def lists_pending(self, scope: str | None = None) -> bool:
        view = getattr(self._local, "view", None)
        if scope is not None and view is not None and view.tenant == scope:
            return view.lists  # the scope's marker outlives each of its lists
        return True  # asking would cost a round trip

    def add_rule(self, rule: dict[str, Any]) -> None:
        self._local.view = None
        self._add_rule(keys=self._rule_keys, args=[rule["id"], _dumps(rule), _token()])

    def rules(self) -> list[dict[str, Any]]:
        view = getattr(self._local, "view", None)
        kept = self._rule_docs
        if view is not None and kept is not None and kept[0] == view.rules_version:
            docs = kept[1]  # unchanged since read: no round trip
        else:
            version, docs = self._wire.script(self._read_rules, self._rule_keys, ())
            self._rule_docs = (version or None, docs)
        return [json.loads(doc) for doc in docs]

    def remove_rule(self, rule_id: str) -> bool:
        self._local.view = None
        return bool(self._remove_rule(keys=self._rule_keys, args=[rule_id, _token()]))

    def clear_rules(self) -> int:
        self._local.view = None
        return int(self._clear_rules(keys=self._rule_keys, args=[_token()]))


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
            self._wire.drop_idle()  # likely all gone with the one that failed
            raise outage.failed(exc) from None
        if outage.down_since is not None:
            outage.answered()
        return result

    return call  # type: ignore[return-value]


# Every public method that talks to Redis, so one added later cannot be forgotten
# (tests/test_store_outage.py checks this too). Not revision(), end_request() or
# journal_append() or bump() (their thread's append_journal_batch is), which never ask
# Redis: their
# "success" would end an outage that is still going on.
_UNGUARDED = {
    "check_reachable",
    "revision",
    "lists_pending",
    "end_request",
    "journal_append",
    "bump",
    "incr_many_ahead",  # never raises: no reply sends the request's call inline
    "close_ahead",
}
for _name, _member in list(vars(RedisStore).items()):
    if inspect.isfunction(_member) and not _name.startswith("_") and _name not in _UNGUARDED:
        setattr(RedisStore, _name, _guarded(_member))
