"""The proxy's WSGI side: ``serve``'s pipeline, with the upstream in place of the view.

:class:`ProxyPath` takes ``FastPath``'s place in front of Flask for every ``/api/``
request. For one of the contract's operations it runs the shared steps of
``sandbox.api.pipeline``: the body checked by ``check_body`` (the same verdict and JSON
pointers as ``serve``), faults and latency decided and carried out by
``sandbox.api.faulting`` (an injected fault is answered here and never forwarded).
There is no authentication, rate limit or permission check: the upstream does those; a
key the sandbox knows only names the tenant in the journal. Anything else under
``/api/`` is forwarded too, flagged on the request side as outside the contract.

Instead of an answer, it leaves an :class:`Exchange` in the environ
(``netfaults.FORWARD_KEY``): the server awaits the upstream without blocking its loop
(``sandbox.proxy.upstream``), then calls :meth:`Exchange.complete` (or ``fail``), which
judges the answer (``sandbox.proxy.judge``) and runs ``pipeline.finish``: the same
journal entry, coverage count, retry judgement and access line as ``serve``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug import Request, Response
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException

from sandbox.api import faulting
from sandbox.api.fastpath import FastPath
from sandbox.api.pipeline import (
    API_KEY_ENVIRON,
    Call,
    Operation,
    check_body,
    current_call,
    finish,
    http_error,
    render_error,
    unexpected_error,
)
from sandbox.auth import ApiKey
from sandbox.cors import API_PREFIX
from sandbox.errors import ApiError, InvalidApiKey, PayloadTooLarge, UpstreamUnavailable
from sandbox.faults import Fault
from sandbox.journal import ENTRY_KEY, verdict
from sandbox.netfaults import BODY_KEY, FORWARD_KEY
from sandbox.proxy.judge import ResponseJudge

SOURCE_HEADER = "X-Sandbox-Source"
VIOLATIONS_HEADER = "X-Sandbox-Violations"
# The client's own mistakes: forwarded (the upstream answers them its way) unless
# --reject-invalid-requests, and flagged on the request side either way.
_CLIENT_ERRORS = ("MALFORMED_JSON", "UNSUPPORTED_MEDIA_TYPE", "VALIDATION_ERROR")


class ProxyPath(FastPath):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.judge = ResponseJudge(self.sandbox.contract)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        if not environ.get("PATH_INFO", "").startswith(API_PREFIX):
            return self.app(environ, start_response)  # control API and docs: the sandbox's
        req = self._request_class(environ, populate_request=False)
        call = current_call(environ)
        call.source = "sandbox"
        found = self._match(environ)
        try:
            if environ.get(BODY_KEY) is None:  # over --max-body-bytes: never read, never sent
                raise PayloadTooLarge(self.sandbox.settings.max_body_bytes)
            if found is None:
                call.request_problems = [
                    {
                        "path": "",
                        "message": f"{req.method} {req.path} is not an operation of the contract",
                    }
                ]
                response, fault = None, None
            else:
                response, fault = self._run(req, call, *found)
        except ApiError as error:
            response, fault = render_error(error, call), None
        except HTTPException as exc:
            response, fault = http_error(exc, req, call), None
        except Exception:
            response, fault = unexpected_error(req, call), None
        if response is None:
            environ[FORWARD_KEY] = Exchange(self, req, call, fault)
            # Stands in for the upstream's answer; only the headers the middleware
            # around this one adds (CORS) are kept (see Exchange.complete).
            start_response("204 No Content", [])
            return []
        return _finished(self.sandbox, req, call, response)(environ, start_response)

    def _run(
        self, req: Request, call: Call, op: Operation, path_params: dict[str, Any]
    ) -> tuple[Response | None, Fault | None]:
        """An answer of the sandbox's own, or (None, a malformed fault to apply to the
        upstream's): forward it."""
        sandbox = self.sandbox
        call.operation_id = op.operation_id
        presented = req.environ.get(API_KEY_ENVIRON)
        call.api_key = _known(sandbox, presented)
        if not presented:
            missing = {"path": "header:X-API-Key", "message": "Missing API key."}
            call.request_problems = [missing]
        try:
            body = check_body(sandbox, req, call, op.operation_id)
        except ApiError as error:
            if sandbox.settings.reject_invalid_requests or error.code not in _CLIENT_ERRORS:
                raise
            _, found = verdict(error, [], key_sent=True, fault_injected=None)
            call.request_problems = [*(call.request_problems or []), *found]
            body = call.body
        # A key the sandbox does not know still has faults and latency decided for it.
        stand_in = call.api_key or ApiKey(key=presented or "", tenant="", permissions=frozenset())
        decision = faulting.decide(sandbox, req, stand_in, body)
        injected = faulting.carry_out(
            sandbox, req, call, decision, op.permission, body, path_params
        )
        if injected is not None:
            return injected, None
        if decision.respond is not None:
            return faulting.respond(sandbox, call, decision.respond, op.operation_id), None
        fault = decision.fault
        return None, fault if fault is not None and fault.kind == "malformed" else None


class Exchange:
    """A request on its way upstream: what finishing it needs once the answer is in."""

    __slots__ = ("path", "req", "call", "fault")

    def __init__(self, path: ProxyPath, req: Request, call: Call, fault: Fault | None) -> None:
        self.path = path
        self.req = req
        self.call = call
        self.fault = fault

    def complete(
        self, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """The upstream's answer, judged and journaled; returned unchanged but for the
        X-Sandbox-* headers (and a malformed fault, when one was asked for)."""
        call = self.call
        call.source = "upstream"
        if call.operation_id is not None:
            call.response_problems = self.path.judge.judge(call.operation_id, status, headers, body)
        response = Response(body, status=status)
        response.headers = Headers(headers)
        if self.fault is not None:
            response = faulting.malformed(response, call, self.fault)
        _finished(self.path.sandbox, self.req, call, response)
        return response.status_code, response.headers.to_wsgi_list(), response.get_data()

    def fail(
        self, upstream: str, failure: str, reason: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """The upstream did not answer (``failure``: refused, timeout, reset...)."""
        response = render_error(UpstreamUnavailable(upstream, failure, reason), self.call)
        _finished(self.path.sandbox, self.req, self.call, response)
        return response.status_code, response.headers.to_wsgi_list(), response.get_data()


def _known(sandbox: Any, presented: str | None) -> ApiKey | None:
    try:
        return sandbox.keyring.authenticate(presented)
    except InvalidApiKey:
        return None


def _finished(sandbox: Any, req: Request, call: Call, response: Response) -> Response:
    finish(sandbox, req, call, response)
    response.headers[SOURCE_HEADER] = call.source or "sandbox"
    entry = req.environ.get(ENTRY_KEY) or {}
    broken = [
        p for p in entry.get("problems", ()) if entry.get(f"{p.get('side')}_verdict") == "violation"
    ]
    response.headers[VIOLATIONS_HEADER] = str(len(broken))
    return response
