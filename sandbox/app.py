"""create_app(settings): builds the whole sandbox; nothing happens at import time.

The contract, keys, fixtures and customer model are loaded here once and hung on
``app.extensions["quimbi"]``; requests only look things up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from sandbox.api import data, generation, insights, intelligence
from sandbox.api.faulting import add_headers
from sandbox.api.pipeline import REGISTERED, json_response
from sandbox.auth import KeyRing, load_keyring
from sandbox.clock import Clock
from sandbox.config import Settings
from sandbox.control import blueprint as control_blueprint
from sandbox.errors import (
    ApiError,
    EndpointNotFound,
    InternalError,
    MalformedJson,
    MethodNotAllowed,
    PayloadTooLarge,
    envelope,
)
from sandbox.fault_rules import load_magic_fault_customers, load_rules_file
from sandbox.faults import FaultEngine
from sandbox.latency import parse_latency
from sandbox.netfaults import NetworkFaults
from sandbox.personas.insights import load_benchmarks
from sandbox.personas.model import CustomerModel, load_magic_customers
from sandbox.platform import Platform
from sandbox.ratelimit import RateLimiter, parse_rate_limit
from sandbox.resources import fixtures_dir
from sandbox.spec import Contract, load_contract
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
    counters: Counters
    limiter: RateLimiter
    faults: FaultEngine


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
    platform = Platform(
        model=model,
        store=MemoryStore(),
        clock=Clock(),
        benchmarks=load_benchmarks(fixtures / "benchmarks.yaml"),
        tenant_industries={name: t.industry for name, t in keyring.tenants.items()},
    )
    counters = MemoryCounters(now=rate_limit_clock)
    limiter = RateLimiter(counters, parse_rate_limit(settings.rate_limit), now=rate_limit_clock)
    faults = FaultEngine(
        counters,
        seed=settings.seed,
        magic=load_magic_fault_customers(fixtures / "faults.yaml"),
        latency=parse_latency(settings.latency) if settings.latency else None,
        hold_cap_seconds=settings.hang_cap_seconds,
    )
    if settings.faults is not None:
        faults.add_rules(load_rules_file(settings.faults))
    return Sandbox(settings, contract, keyring, platform, counters, limiter, faults)


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


def _render(error: ApiError):
    return json_response(envelope(error), error.status, error.headers)


def _http_error(exc: HTTPException):
    status = exc.code or 500
    if status == 404:
        error: ApiError = EndpointNotFound(request.method, request.path)
    elif status == 405:
        allowed = [m for m in (exc.valid_methods or []) if m not in {"HEAD", "OPTIONS"}]
        error = MethodNotAllowed(request.method, request.path, allowed)
    elif status == 413:
        error = PayloadTooLarge(request.max_content_length or 0)
    elif status == 400:
        error = MalformedJson(exc.description or "Bad request.")
    else:
        error = ApiError(exc.description)
        error.status, error.code = status, (exc.name or "ERROR").upper().replace(" ", "_")
    return _render(error)


def _unexpected(exc: Exception):
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _render(InternalError())


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
    settings = (
        (settings or Settings()).replace(**overrides) if overrides else (settings or Settings())
    )
    app = Flask("sandbox")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    sandbox = build_sandbox(settings, rate_limit_clock)
    app.extensions["quimbi"] = sandbox
    for module in (intelligence, generation, data, insights):
        app.register_blueprint(module.blueprint)
    app.register_blueprint(control_blueprint)
    app.register_error_handler(ApiError, _render)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    app.after_request(add_headers)
    app.wsgi_app = NetworkFaults(app.wsgi_app)  # type: ignore[method-assign]
    _check_routes_match_contract(app, sandbox.contract)
    return app
