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
from typing import Any

from flask import Response, current_app, g, request

from sandbox.api import faulting
from sandbox.errors import MalformedJson, UnsupportedMediaType, ValidationFailed

View = Callable[..., dict[str, Any]]
# Operations are registered here as blueprints import, and checked against the
# contract when the app is built (so a route can't silently drift from the spec).
REGISTERED: dict[str, str] = {}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    response = Response(payload, status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_body() -> Any:
    mimetype = request.mimetype
    if mimetype != "application/json":
        raise UnsupportedMediaType(request.headers.get("Content-Type"))
    raw = request.get_data(cache=True)
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
            g.operation_id = operation_id
            api_key = sandbox.keyring.authenticate(request.headers.get("X-API-Key"))
            g.api_key = api_key
            faulting.admit(sandbox, api_key)
            sandbox.keyring.require(api_key, permission)
            body = None
            contract_op = sandbox.contract.operation(operation_id)
            if contract_op.request_validator is not None:
                body = parse_json_body()
                strict = sandbox.settings.strict
                problems = sandbox.contract.validate_request(operation_id, body, strict=strict)
                if problems:
                    raise ValidationFailed([p.as_dict() for p in problems])
                if not strict:
                    # Tolerated, as real servers do, but a client author wants to know.
                    g.warnings = [
                        p.as_dict()
                        for p in sandbox.contract.unknown_request_fields(operation_id, body)
                    ]
            decision = faulting.decide(sandbox, api_key, body)
            injected = faulting.carry_out(sandbox, decision, permission, body, path_params)
            if injected is not None:
                return injected
            result = view(sandbox.platform, api_key.tenant, body, **path_params)
            if decision.fault is not None and decision.fault.kind == "malformed":
                return faulting.malformed(json_response(result), decision.fault)
            return json_response(result)

        return handle

    return decorate
