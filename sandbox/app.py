"""create_app(settings): builds the whole sandbox; nothing happens at import time.

The contract, keys, fixtures and customer model are loaded here once and hung on
``app.extensions["quimbi"]``; requests only look things up.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from sandbox.answers import AnswerCache
from sandbox.api import data, generation, insights, intelligence
from sandbox.api.fastpath import FastPath
from sandbox.api.faulting import GENERATED_CASE_PREFIX
from sandbox.api.pipeline import (
    REGISTERED,
    current_call,
    finish,
    http_error,
    render_error,
    unexpected_error,
)
from sandbox.auth import KeyRing, load_keyring
from sandbox.behaviour import Behaviour
from sandbox.clock import Clock, parse_timestamp
from sandbox.config import ConfigError, Settings
from sandbox.control import blueprint as control_blueprint
from sandbox.cors import with_cors
from sandbox.coverage import Coverage
from sandbox.docs import blueprint as docs_blueprint
from sandbox.errors import (
    ApiError,
)
from sandbox.fault_rules import load_magic_fault_customers, load_rules_file
from sandbox.faults import FaultEngine
from sandbox.generated import AnswerGenerator
from sandbox.journal import Journal
from sandbox.latency import parse_latency
from sandbox.netfaults import NetworkFaults
from sandbox.personas.catalog import shelves
from sandbox.personas.insights import load_benchmarks
from sandbox.personas.model import CustomerModel, load_magic_customers
from sandbox.platform import Platform
from sandbox.proxy.recording import REPLAY_PREFIX, RecordingError, Replay
from sandbox.ratelimit import RateLimiter, parse_rate_limit
from sandbox.resources import fixtures_dir
from sandbox.spec import Contract, load_contract
from sandbox.store.base import Store
from sandbox.store.counters import Counters, MemoryCounters
from sandbox.store.memory import MemoryStore

log = logging.getLogger("sandbox")


@dataclass
class Sandbox:
    """Everything a request may need, built once per app."""

    settings: Settings
    contract: Contract
    keyring: KeyRing
    platform: Platform
    store: Store
    journal: Journal
    counters: Counters
    limiter: RateLimiter
    faults: FaultEngine
    answers: AnswerCache
    generator: AnswerGenerator
    coverage: Coverage
    behaviour: Behaviour | None  # None with --no-behaviour-checks
    replay: Replay | None = None  # serve --replay FILE

    def reset(self, tenant: str | None = None) -> None:
        """Back to how the sandbox started: one tenant's data, flaky counters and rate-limit
        windows; or everything (also the journal, the clock and the fault rules, with the
        --faults file's rules loaded afresh)."""
        self.store.reset(tenant)
        self.faults.reset_customers(tenant)
        if tenant is None:
            self.counters.delete(GENERATED_CASE_PREFIX)
            self.counters.delete(REPLAY_PREFIX)
        self.coverage.reset(tenant)
        if self.behaviour is not None:
            self.behaviour.reset(tenant)
        if tenant is not None:
            for api_key in self.keyring:
                if api_key.tenant == tenant:
                    self.limiter.reset(api_key.key)
            return
        self.platform.clock.reset()
        self.limiter.reset()
        self.faults.clear()
        if self.settings.faults is not None:
            self.faults.add_rules(load_rules_file(self.settings.faults))


def open_store(url: str) -> Store:
    if url == "memory":
        return MemoryStore()
    from sandbox.store.redis import RedisStore  # only needed for shared state

    store = RedisStore(url)
    try:
        store.check_reachable()
    except Exception as exc:  # redis raises several connection error types
        name = store.outage.store  # without the URL's password
        raise ConfigError(f"--store {name}: cannot reach Redis ({exc})") from None
    return store


def load_state_file(sandbox: Sandbox, path: Path) -> None:
    from sandbox.control.state import STATE_SCHEMA

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--state {path}: cannot read JSON ({exc})") from None
    problems = sandbox.contract.problems(sandbox.contract.validator_for(STATE_SCHEMA), document)
    if problems:
        listed = "; ".join(f"{p.path or '/'}: {p.message}" for p in problems[:5])
        raise ConfigError(f"--state {path}: not a sandbox state document: {listed}")
    sandbox.platform.import_state(document)


def build_sandbox(settings: Settings, rate_limit_clock: Callable[[], float] = time.time) -> Sandbox:
    fixtures = fixtures_dir()
    contract = load_contract()
    keyring = load_keyring(fixtures / "keys.yaml", settings.keys)
    # Magic fault customers exist in every tenant like the other magic customers.
    magic = {
        **load_magic_customers(fixtures / "customers.yaml"),
        **load_magic_customers(fixtures / "faults.yaml"),
    }
    model = CustomerModel(settings.seed, magic, customers=settings.customers)
    store = open_store(settings.store)
    if settings.workers > 1:
        # Built on first use otherwise (Faker's import is a tenth of a start); forked
        # workers share what the parent built, instead of each importing it alone.
        shelves(settings.seed)
    clock = Clock(
        parse_timestamp(settings.now) if settings.now else None,
        load=lambda: store.get_value("clock"),
        save=lambda state: store.set_value("clock", state),
    )
    platform = Platform(
        model=model,
        store=store,
        clock=clock,
        benchmarks=load_benchmarks(fixtures / "benchmarks.yaml"),
        tenant_industries={name: t.industry for name, t in keyring.tenants.items()},
    )
    # A shared store also keeps counters (rate-limit windows, fault counts) for every
    # worker; in memory they get their own, on the rate-limit clock tests can move.
    counters: Counters = (
        store if getattr(store, "shares_counters", False) else MemoryCounters(now=rate_limit_clock)
    )
    limiter = RateLimiter(counters, parse_rate_limit(settings.rate_limit), now=rate_limit_clock)
    faults = FaultEngine(
        counters,
        seed=settings.seed,
        magic=load_magic_fault_customers(fixtures / "faults.yaml"),
        latency=parse_latency(settings.latency) if settings.latency else None,
        hold_cap_seconds=settings.hang_cap_seconds,
        generated=settings.responses == "generated",
    )
    if settings.faults is not None:
        faults.add_rules(load_rules_file(settings.faults))
    sandbox = Sandbox(
        settings,
        contract,
        keyring,
        platform,
        store,
        Journal(store, settings.journal_size),
        counters,
        limiter,
        faults,
        AnswerCache(store, clock),
        AnswerGenerator(contract),
        Coverage(counters, contract),
        # Retries are timed on the rate-limit clock: real time, or the one a test moves.
        Behaviour(counters, rate_limit_clock) if settings.behaviour_checks else None,
    )
    if settings.state is not None:
        load_state_file(sandbox, settings.state)
    if settings.replay is not None:
        try:
            sandbox.replay = Replay(settings.replay)
        except RecordingError as exc:
            raise ConfigError(str(exc)) from None
    return sandbox


class _SyncFlask(Flask):
    """Flask, told that no view or hook is a coroutine: otherwise it asks, for every
    function on every request, and the asking costs more than some whole hooks."""

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        return func


def _check_routes_match_contract(app: Flask, contract: Contract) -> None:
    missing = set(contract.operations) - set(REGISTERED)
    if missing:
        raise RuntimeError(f"operations in openapi.yaml without a route: {sorted(missing)}")
    routed = {
        (method, rule.rule.replace("<path:", "{").replace(">", "}"))
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"} and rule.rule.startswith("/api/")
    }
    for op in contract.operations.values():
        if (op.method, op.path) not in routed:
            raise RuntimeError(f"{op.operation_id}: {op.method} {op.path} is not routed")


def _render(error: ApiError) -> Response:
    return render_error(error, current_call(request.environ))


def _http_error(exc: HTTPException) -> Response:
    req = request._get_current_object()  # type: ignore[attr-defined]
    return http_error(exc, req, current_call(req.environ))


def _unexpected(exc: Exception) -> Response:
    req = request._get_current_object()  # type: ignore[attr-defined]
    return unexpected_error(req, current_call(req.environ))


def _finish(response: Response) -> Response:
    """after_request (requests the fast path left to Flask): headers and journal."""
    req = request._get_current_object()  # type: ignore[attr-defined]
    sandbox = current_app.extensions["quimbi"]
    return finish(sandbox, req, current_call(req.environ), response)


def create_app(
    settings: Settings | None = None,
    *,
    rate_limit_clock: Callable[[], float] = time.time,
    **overrides: Any,
) -> Flask:
    """The sandbox app; ``overrides`` replace settings fields.

    ``rate_limit_clock`` (Unix seconds) drives the rate-limit windows, so tests can move
    time instead of sleeping; it is not the sandbox's test clock.
    """
    settings = settings or Settings()
    if overrides:
        settings = settings.replace(**overrides)
    app = _SyncFlask("sandbox")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    sandbox = build_sandbox(settings, rate_limit_clock)
    app.extensions["quimbi"] = sandbox
    for module in (intelligence, generation, data, insights):
        app.register_blueprint(module.blueprint)
    app.register_blueprint(control_blueprint)
    app.register_blueprint(docs_blueprint)
    app.register_error_handler(ApiError, _render)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    app.after_request(_finish)
    # Proxy mode: every /api/ request goes upstream, through the same pipeline steps.
    path_class = FastPath
    if settings.upstream is not None:
        from sandbox.proxy.path import ProxyPath

        path_class = ProxyPath
    fast_path = path_class(
        app.wsgi_app, sandbox, app.view_functions, app.url_map, settings.max_body_bytes
    )
    app.wsgi_app = NetworkFaults(  # type: ignore[method-assign]
        with_cors(fast_path, settings.cors_origins, app.url_map)
    )
    # For sandbox.server: what to await before running the app on a request, and what to
    # close when it is done (the Redis store's loop-side calls, sandbox.store.redis_ahead).
    app.sandbox_ahead = fast_path.ahead  # type: ignore[attr-defined]
    app.sandbox_close = fast_path.close  # type: ignore[attr-defined]
    _check_routes_match_contract(app, sandbox.contract)
    return app
