"""The request pipeline every /api/ operation goes through, in this order:

authenticate the key -> count it against the key's rate limits -> check its permission
-> parse the JSON body -> validate it against the operation's schema -> decide and
inject faults and latency -> run the view -> serialise the answer.

So faults only hit requests that would otherwise reach the operation, and every
answer after authentication (errors included) carries the rate-limit headers.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Request, Response, current_app, request

from sandbox.api import faulting
from sandbox.auth import ApiKey
from sandbox.errors import ApiError, MalformedJson, UnsupportedMediaType, ValidationFailed
from sandbox.netfaults import BODY_KEY
from sandbox.ratelimit import Quota

View = Callable[..., dict[str, Any]]
# Operations are registered here as blueprints import, and checked against the
# contract when the app is built (so a route can't silently drift from the spec).
REGISTERED: dict[str, str] = {}
CALL_KEY = "sandbox.call"  # the request's Call, in the WSGI environ


@dataclass(slots=True)
class Call:
    """What the pipeline learned about one request. The after-request hook reads it for
    the rate-limit headers and the journal; on the hot path it replaces Flask's ``g``,
    whose every lookup costs a context-local proxy."""

    operation_id: str | None = None
    api_key: ApiKey | None = None
    quota: Quota | None = None
    warnings: list[dict[str, str]] = field(default_factory=list)
    latency_ms: int | None = None
    fault_injected: str | None = None
    error: ApiError | None = None


def current_call(environ: dict[str, Any]) -> Call:
    call = environ.get(CALL_KEY)
    if call is None:
        call = environ[CALL_KEY] = Call()
    return call


def encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(encode(body), status=status, headers=headers, mimetype="application/json")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def raw_body(req: Request) -> bytes:
    """The request body: as the sandbox's server already read it, or through werkzeug
    (which enforces --max-body-bytes) under any other server."""
    body = req.environ.get(BODY_KEY)
    return body if body is not None else req.get_data(cache=True)


def parse_json_body() -> Any:
    return _parse(request._get_current_object())  # type: ignore[attr-defined]


def _parse(req: Request) -> Any:
    environ = req.environ
    # The mimetype without werkzeug's full header parser: the type before any parameter.
    content_type = environ.get("CONTENT_TYPE")
    if (content_type or "").partition(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(content_type)
    raw = raw_body(req)
    if not raw.strip():
        raise MalformedJson("Request body is empty; expected a JSON object.")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedJson(
            "Request body is not valid JSON.", details={"reason": str(exc)[:200]}
        ) from None


def operation(
    operation_id: str, permission: str = "read"
) -> Callable[[View], Callable[..., Response]]:
    def decorate(view: View) -> Callable[..., Response]:
        REGISTERED[operation_id] = view.__name__

        @functools.wraps(view)
        def handle(**path_params: Any) -> Response:
            sandbox = current_app.extensions["quimbi"]
            req = request._get_current_object()  # type: ignore[attr-defined]
            call = current_call(req.environ)
            call.operation_id = operation_id
            api_key = sandbox.keyring.authenticate(req.environ.get("HTTP_X_API_KEY"))
            call.api_key = api_key
            faulting.admit(sandbox, call, api_key)
            sandbox.keyring.require(api_key, permission)
            body = None
            contract = sandbox.contract
            if contract.operation(operation_id).request_validator is not None:
                body = _parse(req)
                strict = sandbox.settings.strict
                problems = contract.validate_request(operation_id, body, strict=strict)
                if problems:
                    raise ValidationFailed([p.as_dict() for p in problems])
                if not strict:
                    # Tolerated, as real servers do, but a client author wants to know.
                    call.warnings = [
                        p.as_dict() for p in contract.unknown_request_fields(operation_id, body)
                    ]
            decision = faulting.decide(sandbox, req, api_key, body)
            injected = faulting.carry_out(
                sandbox, req, call, decision, permission, body, path_params
            )
            if injected is not None:
                return injected

            def compute() -> bytes:
                return encode(view(sandbox.platform, api_key.tenant, body, **path_params))

            if permission == "read" and sandbox.answers is not None:
                raw = raw_body(req) if body is not None else b""
                payload = sandbox.answers.answer(
                    operation_id, api_key.tenant, raw, path_params, compute
                )
            else:
                payload = compute()
            response = Response(payload, mimetype="application/json")
            if decision.fault is not None and decision.fault.kind == "malformed":
                return faulting.malformed(response, call, decision.fault)
            return response

        return handle

    return decorate
