"""create_app(settings): builds the whole sandbox; nothing happens at import time.

The contract, keys, fixtures and customer model are loaded here once and hung on
``app.extensions["quimbi"]``; requests only look things up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from sandbox.api import data, generation, insights, intelligence
from sandbox.api.pipeline import REGISTERED, json_response
from sandbox.auth import KeyRing, load_keyring
from sandbox.clock import Clock
from sandbox.config import Settings
from sandbox.control import blueprint as control_blueprint
from sandbox.docs import blueprint as docs_blueprint
from sandbox.errors import (
    ApiError,
    EndpointNotFound,
    InternalError,
    MalformedJson,
    MethodNotAllowed,
    PayloadTooLarge,
    envelope,
)
from sandbox.personas.insights import load_benchmarks
from sandbox.personas.model import CustomerModel, load_magic_customers
from sandbox.platform import Platform
from sandbox.resources import fixtures_dir
from sandbox.spec import Contract, load_contract
from sandbox.store.memory import MemoryStore

log = logging.getLogger("sandbox")


@dataclass
class Sandbox:
    """Everything a request may need, built once per app."""

    settings: Settings
    contract: Contract
    keyring: KeyRing
    platform: Platform


def build_sandbox(settings: Settings) -> Sandbox:
    fixtures = fixtures_dir()
    contract = load_contract()
    keyring = load_keyring(fixtures / "keys.yaml", settings.keys)
    model = CustomerModel(
        settings.seed,
        load_magic_customers(fixtures / "customers.yaml"),
        customers=settings.customers,
    )
    platform = Platform(
        model=model,
        store=MemoryStore(),
        clock=Clock(),
        benchmarks=load_benchmarks(fixtures / "benchmarks.yaml"),
        tenant_industries={name: t.industry for name, t in keyring.tenants.items()},
    )
    return Sandbox(settings, contract, keyring, platform)


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


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    settings = (
        (settings or Settings()).replace(**overrides) if overrides else (settings or Settings())
    )
    app = Flask("sandbox")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    sandbox = build_sandbox(settings)
    app.extensions["quimbi"] = sandbox
    for module in (intelligence, generation, data, insights):
        app.register_blueprint(module.blueprint)
    app.register_blueprint(control_blueprint)
    app.register_blueprint(docs_blueprint)
    app.register_error_handler(ApiError, _render)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    _check_routes_match_contract(app, sandbox.contract)
    return app
