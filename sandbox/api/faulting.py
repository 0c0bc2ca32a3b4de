"""Rate limits and faults in the request pipeline: the Flask side of them.

``sandbox.ratelimit`` and ``sandbox.faults`` decide; this module reads the request,
carries the decision out (sleeps, injected error answers, truncated bodies, network
faults via ``sandbox.netfaults``) and puts the rate-limit and ``X-Sandbox-*`` headers
on the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Request, Response

from sandbox.auth import ApiKey
from sandbox.errors import (
    ApiError,
    CustomerNotFound,
    EndpointNotFound,
    IndustryNotFound,
    InsufficientPermissions,
    InternalError,
    InvalidApiKey,
    InvalidSandboxHeader,
    RateLimitExceeded,
    ServiceUnavailable,
    ValidationFailed,
)
from sandbox.faults import Decision, Fault, RequestFacts, Respond, SandboxHeaderError
from sandbox.generated import Answer, CaseId
from sandbox.netfaults import DELAY_KEY, ENVIRON_KEY

if TYPE_CHECKING:
    from sandbox.api.pipeline import Call
    from sandbox.ratelimit import Ahead

FAULT_HEADER = "X-Sandbox-Fault"
LATENCY_HEADER = "X-Sandbox-Latency"
# The same headers as WSGI environ keys: read there, they cost a dict lookup.
FAULT_ENVIRON = "HTTP_" + FAULT_HEADER.upper().replace("-", "_")
LATENCY_ENVIRON = "HTTP_" + LATENCY_HEADER.upper().replace("-", "_")
RESPONSE_HEADER = "X-Sandbox-Response"
RESPONSE_ENVIRON = "HTTP_" + RESPONSE_HEADER.upper().replace("-", "_")
CASE_HEADER = "X-Sandbox-Case"
# Counters: the next generated case of each operation (shared by workers, reset by a reset).
GENERATED_CASE_PREFIX = "generated:case:"
INJECTED_HEADER = "X-Sandbox-Fault-Injected"
LATENCY_INJECTED_HEADER = "X-Sandbox-Latency-Injected"


def admit(sandbox: Any, call: Call, api_key: ApiKey, ahead: Ahead | None = None) -> None:
    """Count the request against its key's windows; 429 when over a limit. ``ahead``:
    the count the server made before the app ran (``sandbox.api.fastpath``)."""
    if api_key.rate_limited:  # the magic key: always over its limit
        quota = sandbox.limiter.exhausted()
        call.quota = quota
        raise RateLimitExceeded(
            quota.retry_after or 1, headers={INJECTED_HEADER: "429; source=key"}
        )
    quota = sandbox.limiter.admit(api_key.key, api_key.tenant, ahead)
    call.quota = quota
    if not quota.allowed:
        raise RateLimitExceeded(quota.retry_after or 1)


def customer_id_of(body: Any) -> str | None:
    """The customer a request is about: ``customer_id`` or ``customer_profile.customer_id``."""
    if not isinstance(body, dict):
        return None
    found = body.get("customer_id")
    profile = body.get("customer_profile")
    if found is None and isinstance(profile, dict):
        found = profile.get("customer_id")
    return found if isinstance(found, str) else None


def decide(sandbox: Any, req: Request, api_key: ApiKey, body: Any) -> Decision:
    environ = req.environ  # cheaper than req.headers, which raises inside for a missing one
    facts = RequestFacts(
        method=req.method,
        path=req.path,
        api_key=api_key.key,
        tenant=api_key.tenant,
        customer_id=customer_id_of(body),
        fault_header=environ.get(FAULT_ENVIRON),
        latency_header=environ.get(LATENCY_ENVIRON),
        response_header=environ.get(RESPONSE_ENVIRON),
    )
    try:
        return sandbox.faults.decide(facts)
    except SandboxHeaderError as exc:
        raise InvalidSandboxHeader(RESPONSE_HEADER, str(exc)) from None
    except ValueError as exc:
        raise ValidationFailed(
            [{"path": "", "message": str(exc)}],
            message=f"Bad sandbox header: {exc}",
        ) from None


def _injected_error(
    sandbox: Any,
    req: Request,
    call: Call,
    fault: Fault,
    permission: str,
    body: Any,
    path_params: dict[str, Any],
) -> ApiError:
    """An error answer indistinguishable from a real one (bar X-Sandbox-Fault-Injected)."""
    status = fault.status
    error: ApiError
    if status == 401:
        error = InvalidApiKey(fault.message or "Invalid API key.")
    elif status == 403:
        error = InsufficientPermissions(
            fault.message or f"API key lacks the '{permission}' permission this endpoint requires.",
            details={"required_permission": permission},
        )
    elif status == 404:
        customer_id = customer_id_of(body)
        if customer_id is not None:
            error = CustomerNotFound(customer_id)
        elif "industry" in path_params:
            error = IndustryNotFound(path_params["industry"], sandbox.platform.benchmarks)
        else:
            error = EndpointNotFound(req.method, req.path)
    elif status == 429:
        quota = sandbox.limiter.exhausted()
        call.quota = quota
        error = RateLimitExceeded(fault.retry_after or quota.retry_after or 1)
    elif status == 503:
        error = ServiceUnavailable(fault.message, retry_after=fault.retry_after or 1)
    else:
        error = InternalError(fault.message)
    if fault.code:
        error.code = fault.code
    if fault.message:
        error.message = fault.message
    if status == 401:
        call.quota = None  # a real 401 never carries rate-limit headers
    error.headers[INJECTED_HEADER] = fault.label
    return error


def carry_out(
    sandbox: Any,
    req: Request,
    call: Call,
    decision: Decision,
    permission: str,
    body: Any,
    path_params: dict[str, Any],
) -> Response | None:
    """Hold the answer, inject the fault. A Response means: answer with it, skip the view.

    The hold itself is the server's job (``sandbox.netfaults``): the answer is computed
    now and sent once the delay is over."""
    if decision.latency_seconds > 0:
        call.latency_ms = round(decision.latency_seconds * 1000)
        req.environ[DELAY_KEY] = decision.latency_seconds
    fault = decision.fault
    if fault is None or fault.kind == "malformed":
        return None
    if fault.status is not None:
        raise _injected_error(sandbox, req, call, fault, permission, body, path_params)
    seconds = sandbox.faults.hang_seconds(fault) if fault.kind == "hang" else 0.0
    req.environ[ENVIRON_KEY] = (fault.kind, seconds)
    call.fault_injected = fault.label  # the journal's only witness: this answer is never sent
    return Response(status=204)  # never sent: sandbox.netfaults drops the connection


def respond(sandbox: Any, call: Call, respond: Respond, operation_id: str) -> Response:
    """A generated case (or an answer given in full) instead of the view's answer.

    Its headers are the case's, rate-limit ones included: the request was counted (a
    real 429 comes before this), but the answer shows what the case says."""
    if respond.answer is not None:
        answer = Answer.from_dict(respond.answer)
        label = respond.label
    else:
        case = respond.case
        if case is None:
            case = sandbox.counters.incr(GENERATED_CASE_PREFIX + operation_id)
        case_id = CaseId(sandbox.settings.seed, operation_id, case, respond.status)
        try:
            answer = sandbox.generator.case(case_id)
        except ValueError as exc:  # a status the operation does not document
            raise InvalidSandboxHeader(RESPONSE_HEADER, str(exc)) from None
        label = case_id.label()
    call.quota = None
    call.case = label
    call.answer_code = answer.error_code
    response = Response(answer.encoded(), status=answer.status, mimetype="application/json")
    response.headers.extend(answer.headers)
    response.headers[CASE_HEADER] = label
    return response


def malformed(response: Response, call: Call, fault: Fault) -> Response:
    """The real answer cut in half: still 200 and application/json, no longer JSON.

    Content-Length matches what is sent, so clients fail parsing, not reading.
    """
    data = response.get_data()
    response.set_data(data[: max(1, len(data) // 2)])
    response.status_code = 200
    response.headers[INJECTED_HEADER] = fault.label
    call.fault_injected = fault.label
    return response


def add_headers(response: Response, call: Call) -> None:
    """The rate-limit headers for a counted key, and the latency the server will add."""
    quota = call.quota
    headers = response.headers
    if quota is not None:  # nothing else sets them (and asking Headers costs)
        headers.extend(quota.headers())
    if call.latency_ms is not None:
        headers[LATENCY_INJECTED_HEADER] = str(call.latency_ms)
