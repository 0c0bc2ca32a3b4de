"""The request pipeline every /api/ operation goes through, in this order:

authenticate the key -> count it against the key's rate limits -> check its permission
-> parse the JSON body -> validate it against the operation's schema -> decide and
inject faults and latency -> run the view -> serialise the answer.

So faults only hit requests that would otherwise reach the operation, and every
answer after authentication (errors included) carries the rate-limit headers.

:func:`run` is that pipeline for one request; :func:`finish` adds the headers and writes
the journal entry; :func:`render_error` answers any failure with the envelope. They take
the request, the :class:`Call` and the sandbox explicitly, so the same code serves the
Flask route (``operation``) and the Flask-free fast path (``sandbox.api.fastpath``).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Response, current_app, request
from werkzeug import Request
from werkzeug.exceptions import HTTPException

from sandbox.api import faulting
from sandbox.auth import ApiKey, redact
from sandbox.clock import iso
from sandbox.coverage import NOT_ANSWERS, fault_kind
from sandbox.errors import (
    ApiError,
    EndpointNotFound,
    InternalError,
    MalformedJson,
    MethodNotAllowed,
    PayloadTooLarge,
    StoreUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
    envelope,
)
from sandbox.journal import ENTRY_KEY, sides, verdict
from sandbox.netfaults import BODY_KEY, STARTED_KEY
from sandbox.ratelimit import Quota

log = logging.getLogger("sandbox")

View = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Operation:
    operation_id: str
    permission: str  # read | write
    view: View  # (platform, tenant, body, **path_params) -> the answer


# Operations are registered here as blueprints import, and checked against the
# contract when the app is built (so a route can't silently drift from the spec).
REGISTERED: dict[str, Operation] = {}
CALL_KEY = "sandbox.call"  # the request's Call, in the WSGI environ
API_KEY_ENVIRON = "HTTP_X_API_KEY"  # the X-API-Key header
AHEAD_KEY = "sandbox.ahead"  # the request's rate-limit count, made before the app ran


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
    case: str | None = None  # the generated case (X-Sandbox-Case) that answered
    # The envelope code of an error answer the pipeline did not raise itself: a generated
    # case's, or (proxy mode) the upstream's. The journal and coverage name answers by it.
    answer_code: str | None = None
    body: Any = None  # the parsed JSON body: retry judgement's fingerprint
    # Proxy mode only (sandbox.proxy): who answered ("upstream" | "sandbox"), and each
    # side's problems when the exchange went on despite them.
    source: str | None = None
    request_problems: list[dict[str, str]] | None = None
    response_problems: list[dict[str, str]] | None = None
    fallback: str | None = None  # why the sandbox answered in the upstream's place


def current_call(environ: dict[str, Any]) -> Call:
    call = environ.get(CALL_KEY)
    if call is None:
        call = environ[CALL_KEY] = Call()
    return call


# One encoder for every answer: json.dumps with these options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode(body: Any) -> bytes:
    return _ENCODER.encode(body).encode()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(encode(body), status=status, headers=headers, mimetype="application/json")


def send(response: Response, environ: dict[str, Any], start_response: Callable[..., Any]):
    """Hand ``response`` to the WSGI server: what calling it does (werkzeug's
    ``get_wsgi_response``) for the answers the pipeline makes, a tenth of the cost (its
    header copies and checks were ~4 % of a request)."""
    status = response.status_code
    if status in (204, 304) or status < 200:  # no body, no length: werkzeug knows the rules
        return response(environ, start_response)
    data = response.get_data()
    headers = response.headers.to_wsgi_list()
    # Not `in response.headers`: werkzeug answers a miss by raising (and building) an
    # HTTP exception, which cost more than the rest of this function.
    if not any(name.lower() == "content-length" for name, _ in headers):
        headers.append(("Content-Length", str(len(data))))
    start_response(response.status, headers)
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [data]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every body: json.loads with an option builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


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
        return _DECODER.decode(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedJson(
            "Request body is not valid JSON.", details={"reason": str(exc)[:200]}
        ) from None


def operation(
    operation_id: str, permission: str = "read"
) -> Callable[[View], Callable[..., Response]]:
    """Register a view as a contract operation; its Flask route runs the pipeline."""

    def decorate(view: View) -> Callable[..., Response]:
        op = REGISTERED[operation_id] = Operation(operation_id, permission, view)

        @functools.wraps(view)
        def handle(**path_params: Any) -> Response:
            req = request._get_current_object()  # type: ignore[attr-defined]
            sandbox = current_app.extensions["quimbi"]
            return run(sandbox, req, current_call(req.environ), op, path_params)

        handle.operation = op  # type: ignore[attr-defined]  # how the fast path finds it
        return handle

    return decorate


def run(
    sandbox: Any, req: Request, call: Call, op: Operation, path_params: dict[str, Any]
) -> Response:
    """The pipeline for one request; raises ApiError (and HTTPException for a body over
    the limit under a server that left reading it to werkzeug)."""
    operation_id, permission = op.operation_id, op.permission
    call.operation_id = operation_id
    environ = req.environ
    api_key = sandbox.keyring.authenticate(environ.get(API_KEY_ENVIRON))
    call.api_key = api_key
    faulting.admit(sandbox, call, api_key, environ.pop(AHEAD_KEY, None))
    sandbox.keyring.require(api_key, permission)
    body = check_body(sandbox, req, call, operation_id)
    decision = faulting.decide(sandbox, req, api_key, body)
    injected = faulting.carry_out(sandbox, req, call, decision, permission, body, path_params)
    if injected is not None:
        return injected
    if decision.respond is not None:  # never cached: a case is not the persona's answer
        return faulting.respond(sandbox, call, decision.respond, operation_id)
    if sandbox.replay is not None:
        replayed = _replayed(sandbox, req, call, api_key.tenant)
        if replayed is not None:
            return replayed
    return answer(sandbox, req, call, op, api_key.tenant, body, path_params, decision.fault)


def answer(
    sandbox: Any,
    req: Request,
    call: Call,
    op: Operation,
    tenant: str,
    body: Any,
    path_params: dict[str, Any],
    fault: Any,
) -> Response:
    """The view's answer (reads through the answer cache), cut by a ``malformed`` fault.
    The proxy's fallback (``sandbox.proxy``) answers with it too."""

    def compute() -> bytes:
        return encode(op.view(sandbox.platform, tenant, body, **path_params))

    if op.permission == "read":
        raw = raw_body(req) if body is not None else b""
        payload = sandbox.answers.answer(op.operation_id, tenant, raw, path_params, compute)
    else:
        payload = compute()
    response = Response(payload, mimetype="application/json")
    if fault is not None and fault.kind == "malformed":
        return faulting.malformed(response, call, fault)
    return response


def _replayed(sandbox: Any, req: Request, call: Call, tenant: str) -> Response | None:
    """--replay: the recorded answer to this case, if there is one (sandbox.proxy.recording)."""
    found = sandbox.replay.answer(sandbox.counters, req.method, req.path, tenant, raw_body(req))
    if found is None:
        return None
    status, headers, body, line = found
    call.case = f"replay:{line}"
    return Response(body, status=status, headers=headers)


def check_body(sandbox: Any, req: Request, call: Call, operation_id: str) -> Any:
    """The parsed body, checked against the operation's schema (None: it takes none);
    raises the client's error (415, 400, 422). The proxy (``sandbox.proxy``) shares it."""
    contract = sandbox.contract
    if contract.operation(operation_id).request_pointer is None:
        return None
    body = call.body = _parse(req)
    strict = sandbox.settings.strict
    problems = contract.validate_request(operation_id, body, strict=strict)
    if problems:
        raise ValidationFailed([p.as_dict() for p in problems])
    if not strict:
        # Tolerated, as real servers do, but a client author wants to know.
        call.warnings = [p.as_dict() for p in contract.unknown_request_fields(operation_id, body)]
    # Accepted either way, but the client should know what the sandbox assumed.
    call.warnings += [p.as_dict() for p in contract.omitted_defaults(operation_id, body)]
    return body


def render_error(error: ApiError, call: Call) -> Response:
    # The Call keeps the error for the journal; its traceback (and the exception it was
    # raised from) would tie the request's frames into a cycle only the collector frees.
    error.__traceback__ = None
    error.__context__ = None
    call.error = error
    call.fault_injected = error.headers.get(faulting.INJECTED_HEADER) or call.fault_injected
    return json_response(envelope(error), error.status, error.headers)


def http_error(exc: HTTPException, req: Request, call: Call) -> Response:
    """werkzeug's own HTTP errors (routing, body size) as the documented envelope."""
    status = exc.code or 500
    if status == 404:
        error: ApiError = EndpointNotFound(req.method, req.path)
    elif status == 405:
        allowed = [m for m in (exc.valid_methods or []) if m not in {"HEAD", "OPTIONS"}]
        error = MethodNotAllowed(req.method, req.path, allowed)
    elif status == 413:
        error = PayloadTooLarge(req.max_content_length or 0)
    elif status == 400:
        error = MalformedJson(exc.description or "Bad request.")
    else:
        error = ApiError(exc.description)
        error.status, error.code = status, (exc.name or "ERROR").upper().replace(" ", "_")
    return render_error(error, call)


def unexpected_error(req: Request, call: Call) -> Response:
    log.exception("unhandled error on %s %s", req.method, req.path)
    return render_error(InternalError(), call)


_UNJOURNALED = ("/_sandbox/", "/docs", "/openapi.")


def finish(sandbox: Any, req: Request, call: Call, response: Response) -> Response:
    """The rate-limit headers, then the journal entry."""
    try:
        return _finish(sandbox, req, call, response)
    finally:
        sandbox.counters.end_request()  # the store's view of this request (incr_many)


def _finish(sandbox: Any, req: Request, call: Call, response: Response) -> Response:
    faulting.add_headers(response, call)
    path = req.path
    if path.startswith(_UNJOURNALED):
        return response
    environ = req.environ
    error = call.error
    api_key = call.api_key
    fault = call.fault_injected
    key = environ.get(API_KEY_ENVIRON)
    outcome, problems = verdict(
        error, call.warnings, key_sent=key is not None, fault_injected=fault
    )
    entry_id = sandbox.journal.new_id()
    if call.operation_id is not None:
        judged = _tally(sandbox, req, call, response, entry_id)
        if judged is not None:
            outcome, problems = "violation", [*problems, judged]
    proxied = None
    if call.source is not None:
        outcome, problems, proxied = sides(outcome, problems, call)
    started = environ.get(STARTED_KEY)
    elapsed_ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
    environ[ENTRY_KEY] = sandbox.journal.record(
        {
            "id": entry_id,
            "time": iso(datetime.now(UTC)),
            "method": req.method,
            "path": path,
            "operation_id": call.operation_id,
            "tenant": api_key.tenant if api_key else None,
            "api_key": redact(key),
            "status": response.status_code,
            "error_code": error.code if error else call.answer_code,
            # Injected latency is held by the server after this; it still counts.
            "duration_ms": round(elapsed_ms + (call.latency_ms or 0), 2),
            "fault_injected": fault,
            "case": call.case,
            "verdict": outcome,
            # A tuple: with nothing but atomic values the entry is left out of garbage
            # collection, and the journal keeps a thousand of them alive.
            "problems": tuple(problems),
            **(proxied or {}),
        }
    )
    return response


def _tally(
    sandbox: Any, req: Request, call: Call, response: Response, entry_id: str
) -> dict[str, Any] | None:
    """Coverage counts for an operation's answer and, unless --no-behaviour-checks, the
    retry judgement (sandbox.coverage, sandbox.behaviour): one store call. Returns the
    request's behaviour problem, if any."""
    api_key, error, fault = call.api_key, call.error, call.fault_injected
    tenant = api_key.tenant if api_key else None
    status = response.status_code
    code = error.code if error else call.answer_code
    bump = sandbox.coverage.keys(tenant, call.operation_id, status, code, fault, call.latency_ms)
    behaviour = sandbox.behaviour
    try:
        if behaviour is None or tenant is None:
            sandbox.counters.bump(bump)
            return None
        wrote = 200 <= status < 300 and REGISTERED[call.operation_id].permission == "write"
        if behaviour.idle(tenant, status, wrote, bump):
            return None
        retry_after = response.headers.get("Retry-After") if status in (429, 503) else None
        problem = behaviour.observe(
            tenant=tenant,
            entry_id=entry_id,
            method=req.method,
            path=req.path,
            body=call.body,
            raw=lambda: _unread_safe_body(req, status),
            status=status,
            error_code=code,
            retry_after=_seconds(retry_after),
            held_seconds=(call.latency_ms or 0) / 1000,
            answered=fault is None or fault_kind(fault) not in NOT_ANSWERS,
            wrote=wrote,
            bump=bump,
        )
        if problem is not None:
            sandbox.coverage.count_behaviour(tenant, call.operation_id, problem["rule"])
        return problem
    except StoreUnavailable:
        return None  # as the journal: the answer (often the outage's 503) must still be sent


def _unread_safe_body(req: Request, status: int) -> bytes:
    """The body for a fingerprint, never read past the size limit (a 413's is unread)."""
    if status == 413:
        return f"413:{req.environ.get('CONTENT_LENGTH')}".encode()
    try:
        return raw_body(req)
    except HTTPException:
        return b""


def _seconds(header: str | None) -> float | None:
    """Retry-After as seconds (the sandbox sends no HTTP dates; anything else: none)."""
    try:
        return float(header) if header else None
    except ValueError:
        return None
