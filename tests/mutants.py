"""Deliberately broken servers: the real sandbox app with exactly one defect each.

Each mutant names the defect and the kit check that must catch it; the README's
"defect -> check" table is this list. Defects are injected at the edges (WSGI
middleware rewriting answers, or a wrapped ``Platform`` operation / key lookup on the
app's own instance), so the sandbox code itself stays untouched.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask

from contract_tests.sandbox_server import KIT_RATE_LIMIT
from sandbox.app import create_app
from sandbox.errors import InsufficientPermissions, InternalError, ValidationFailed

DEFAULT_KEY = "qpk_test_sandbox"


@dataclass(frozen=True)
class Mutant:
    name: str
    defect: str
    caught_by: str  # the check that must fail
    build: Callable[[], Flask]
    needs_second_key: bool = False


def _rewrite_json(app: Flask, change: Callable[[str, int, Any], Any]) -> Flask:
    """Rewrite every JSON answer with ``change(path, status, body)``.

    At the WSGI level, around everything: the operations' fast path never runs Flask's
    request hooks."""
    inner = app.wsgi_app

    def rewrite(environ, start_response):
        seen: dict[str, Any] = {}

        def start(status, headers, exc_info=None):
            seen.update(status=status, headers=headers)

        body = b"".join(inner(environ, start))
        headers = seen["headers"]
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        if content_type.startswith("application/json"):
            status = int(seen["status"].split()[0])
            document = change(environ["PATH_INFO"], status, json.loads(body))
            body = json.dumps(document).encode()
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        start_response(seen["status"], headers)
        return [body]

    app.wsgi_app = rewrite  # type: ignore[method-assign]
    return app


def _platform(app: Flask) -> Any:
    return app.extensions["quimbi"].platform


def error_outside_envelope() -> Flask:
    def flatten(path: str, status: int, body: Any) -> Any:
        if status >= 400 and isinstance(body, dict) and "error" in body:
            return {"message": body["error"]["message"], "status": status}
        return body

    return _rewrite_json(create_app(seed=0, rate_limit=KIT_RATE_LIMIT), flatten)


def renamed_field() -> Flask:
    def rename(path: str, status: int, body: Any) -> Any:
        if path.endswith("/predict/churn") and status == 200:
            body["churn_level"] = body.pop("risk_level")
        return body

    return _rewrite_json(create_app(seed=0, rate_limit=KIT_RATE_LIMIT), rename)


def missing_required_field() -> Flask:
    def drop(path: str, status: int, body: Any) -> Any:
        if path.endswith("/analyze") and status == 200:
            body.pop("communication_guidance")
        return body

    return _rewrite_json(create_app(seed=0, rate_limit=KIT_RATE_LIMIT), drop)


def churn_out_of_range() -> Flask:
    def percent(path: str, status: int, body: Any) -> Any:
        if path.endswith("/predict/churn") and status == 200:
            body["churn_risk_score"] = round(body["churn_risk_score"] * 100, 1) + 1
        return body

    return _rewrite_json(create_app(seed=0, rate_limit=KIT_RATE_LIMIT), percent)


def no_key_accepted() -> Flask:
    app = create_app(seed=0, rate_limit=KIT_RATE_LIMIT)
    keyring = app.extensions["quimbi"].keyring
    authenticate = keyring.authenticate
    keyring.authenticate = lambda presented: authenticate(presented or DEFAULT_KEY)
    return app


def wrong_key_403() -> Flask:
    app = create_app(seed=0, rate_limit=KIT_RATE_LIMIT)
    keyring = app.extensions["quimbi"].keyring
    authenticate = keyring.authenticate

    def forbid_unknown(presented: str | None) -> Any:
        if presented and not presented.startswith("qpk_test_expired"):
            try:
                return authenticate(presented)
            except Exception:
                raise InsufficientPermissions("Key not allowed.") from None
        return authenticate(presented)

    keyring.authenticate = forbid_unknown
    return app


def no_rate_limit_headers() -> Flask:
    app = create_app(seed=0, rate_limit=KIT_RATE_LIMIT)
    inner = app.wsgi_app
    dropped = {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"}

    def strip(environ, start_response):
        def start(status, headers, exc_info=None):
            kept = [(k, v) for k, v in headers if k.lower() not in dropped]
            return start_response(status, kept, exc_info)

        return inner(environ, start)

    app.wsgi_app = strip  # type: ignore[method-assign]
    return app


def server_error_on_valid_input() -> Flask:
    app = create_app(seed=0, rate_limit=KIT_RATE_LIMIT)
    platform = _platform(app)
    analyze = platform.analyze

    def crash_on_unknown_ids(tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        if not body["customer_id"].startswith("test_customer"):
            raise InternalError()
        return analyze(tenant, body)

    platform.analyze = crash_on_unknown_ids
    return app


def churn_disagrees_with_analyze() -> Flask:
    app = create_app(seed=0, rate_limit=KIT_RATE_LIMIT)
    platform = _platform(app)
    predict_churn = platform.predict_churn

    def shifted(tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        result = predict_churn(tenant, body)
        result["churn_risk_score"] = round(min(1.0, result["churn_risk_score"] + 0.07), 2)
        return result

    platform.predict_churn = shifted
    return app


def ltv_not_updated() -> Flask:
    app = create_app(seed=0, rate_limit=KIT_RATE_LIMIT)

    def acknowledge_only(tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        ids = sorted({order["customer_id"] for order in body["orders"]})
        return {
            "ingested_count": len(body["orders"]),
            "status": "success",
            "customer_profiles_updated": ids,
        }

    _platform(app).ingest_orders = acknowledge_only
    return app


def tenants_share_data() -> Flask:
    app = create_app(seed=0, rate_limit=KIT_RATE_LIMIT)
    # Its data is shared across tenants, so one tenant's revision no longer tells when
    # another's answers change: like a shared store, it gets no answer cache.
    app.extensions["quimbi"].store.revision = lambda tenant: None
    platform = _platform(app)
    for name in ("analyze", "predict_churn", "predict_ltv", "ingest_orders", "my_position"):
        operation = getattr(platform, name)

        def shared(tenant: str, *args: Any, _operation: Any = operation) -> Any:
            return _operation("linda_quilting", *args)

        setattr(platform, name, shared)
    return app


def channel_required() -> Flask:
    app = create_app(seed=0, rate_limit=KIT_RATE_LIMIT)
    platform = _platform(app)
    generate_message = platform.generate_message

    def insist_on_channel(tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        if "channel" not in body["context"]:
            missing = {"path": "/context/channel", "message": "'channel' is a required property"}
            raise ValidationFailed([missing])
        return generate_message(tenant, body)

    platform.generate_message = insist_on_channel
    return app


MUTANTS = [
    Mutant(
        "error_outside_envelope",
        "error bodies outside the envelope",
        "error_envelope",
        error_outside_envelope,
    ),
    Mutant(
        "renamed_field",
        "predict/churn's risk_level renamed churn_level",
        "response_schema_conformance",
        renamed_field,
    ),
    Mutant(
        "missing_required_field",
        "analyze without communication_guidance",
        "response_schema_conformance",
        missing_required_field,
    ),
    Mutant(
        "churn_out_of_range",
        "churn_risk_score as a percentage (outside [0, 1])",
        "response_schema_conformance",
        churn_out_of_range,
    ),
    Mutant("no_key_accepted", "requests without a key accepted", "ignored_auth", no_key_accepted),
    Mutant(
        "wrong_key_403",
        "a wrong key answered 403 instead of 401",
        "unauthenticated_is_401",
        wrong_key_403,
    ),
    Mutant(
        "no_rate_limit_headers",
        "no X-RateLimit-* headers",
        "rate_limit_headers",
        no_rate_limit_headers,
    ),
    Mutant(
        "server_error_on_valid_input",
        "500 when analyzing a customer not in the fixtures",
        "not_a_server_error",
        server_error_on_valid_input,
    ),
    Mutant(
        "churn_disagrees_with_analyze",
        "predict/churn's score 0.07 above analyze's",
        "intelligence_consistency",
        churn_disagrees_with_analyze,
    ),
    Mutant(
        "channel_required",
        "a message request without context.channel (as the reference SDKs send it) refused",
        "documented_defaults",
        channel_required,
    ),
    Mutant(
        "ltv_not_updated",
        "ingested orders acknowledged but not stored",
        "ingest_then_analyze_exact",
        ltv_not_updated,
    ),
    Mutant(
        "tenants_share_data",
        "every tenant reads and writes one tenant's data",
        "tenant_isolation",
        tenants_share_data,
        needs_second_key=True,
    ),
]
