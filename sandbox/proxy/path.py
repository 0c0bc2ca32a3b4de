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

With ``--fallback sandbox``, an upstream that lacks a contract operation (404, 405, 501
that is not the operation's own answer, such as 404 CUSTOMER_NOT_FOUND) or fails is
answered for by the sandbox exactly as ``serve`` would: key, rate limit, permission,
body verdict, then the shared ``pipeline.answer``; the journal says why (``fallback``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
    answer,
    check_body,
    current_call,
    finish,
    http_error,
    render_error,
    send,
    unexpected_error,
)
from sandbox.auth import ApiKey
from sandbox.cors import API_PREFIX
from sandbox.errors import (
    ApiError,
    InternalError,
    InvalidApiKey,
    PayloadTooLarge,
    UpstreamUnavailable,
)
from sandbox.faults import Fault
from sandbox.journal import ENTRY_KEY, verdict
from sandbox.netfaults import BODY_KEY, ENVIRON_KEY, FORWARD_KEY, SERVER_CARRIES_OUT
from sandbox.proxy.judge import ResponseJudge
from sandbox.proxy.recording import Recorder, exchange_line

SOURCE_HEADER = "X-Sandbox-Source"
VIOLATIONS_HEADER = "X-Sandbox-Violations"
# The client's own mistakes: forwarded (the upstream answers them its way) unless
# --reject-invalid-requests, and flagged on the request side either way.
_CLIENT_ERRORS = ("MALFORMED_JSON", "UNSUPPORTED_MEDIA_TYPE", "VALIDATION_ERROR")
# What an upstream that lacks an operation answers (--fallback sandbox answers instead).
FALLBACK_STATUSES = frozenset({404, 405, 501})
_KNOWN_KEYS = 1024  # presented keys remembered (ProxyPath._known), then all forgotten
_UNSEEN = object()


class ProxyPath(FastPath):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.judge = ResponseJudge(self.sandbox.contract)
        record = self.sandbox.settings.record
        self.recorder = Recorder(record) if record is not None else None
        self.known_keys: dict[str, ApiKey | None] = {}

    def _known(self, presented: str | None) -> ApiKey | None:
        """The sandbox's key of that value, if it has an active one. Remembered for the
        last keys seen: the ring never changes while the process runs, and hashing the
        presented key was most of this per exchange."""
        if not presented:
            return None
        known = self.known_keys
        found = known.get(presented, _UNSEEN)
        if found is _UNSEEN:
            try:
                found = self.sandbox.keyring.authenticate(presented)
            except InvalidApiKey:
                found = None
            if len(known) >= _KNOWN_KEYS:
                known.clear()
            known[presented] = found
        return found  # type: ignore[return-value]

    def ahead(self, environ: dict[str, Any]) -> None:
        return None  # nothing to count before: the upstream limits, the fallback's run inline

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        if not environ.get("PATH_INFO", "").startswith(API_PREFIX):
            return self.app(environ, start_response)  # control API and docs: the sandbox's
        req: Any = Served(environ, self.sandbox.settings.max_body_bytes)
        call = current_call(environ)
        call.source = "sandbox"
        found = self._match(environ)
        if found is None and req.method == "HEAD":  # GET's answer without its body (RFC 9110)
            found = self._match({"REQUEST_METHOD": "GET", "PATH_INFO": environ["PATH_INFO"]})
        outcome: Response | Exchange
        try:
            if not environ.get(SERVER_CARRIES_OUT):
                # werkzeug or gunicorn would send the stand-in below: nobody forwards.
                raise InternalError("Proxy mode forwards only on quimbi-sandbox proxy's server.")
            if environ.get(BODY_KEY) is None:  # over --max-body-bytes: never read, never sent
                raise PayloadTooLarge(self.sandbox.settings.max_body_bytes)
            if found is None:
                call.request_problems = [
                    {
                        "path": "",
                        "message": f"{req.method} {req.path} is not an operation of the contract",
                    }
                ]
                outcome = Exchange(self, req, call)
            else:
                outcome = self._run(req, call, *found)
        except ApiError as error:
            outcome = render_error(error, call)
        except HTTPException as exc:
            outcome = http_error(exc, req, call)
        except Exception:
            outcome = unexpected_error(req, call)
        if isinstance(outcome, Exchange):
            environ[FORWARD_KEY] = outcome
            # Stands in for the upstream's answer; only the headers the middleware
            # around this one adds (CORS) are kept (see server._with_local).
            start_response("204 No Content", [])
            return []
        finished = _finished(self.sandbox, req, call, outcome, self.recorder)
        return send(finished, environ, start_response)

    def _run(
        self, req: Request, call: Call, op: Operation, path_params: dict[str, Any]
    ) -> Response | Exchange:
        """An answer of the sandbox's own, or the Exchange to forward."""
        sandbox = self.sandbox
        call.operation_id = op.operation_id
        presented = req.environ.get(API_KEY_ENVIRON)
        call.api_key = self._known(presented)
        if not presented:
            missing = {"path": "header:X-API-Key", "message": "Missing API key."}
            call.request_problems = [missing]
        invalid = None
        try:
            body = check_body(sandbox, req, call, op.operation_id)
        except ApiError as error:
            if sandbox.settings.reject_invalid_requests or error.code not in _CLIENT_ERRORS:
                raise
            _, found = verdict(error, [], key_sent=True, fault_injected=None)
            call.request_problems = [*(call.request_problems or []), *found]
            body, invalid = call.body, error
        # A key the sandbox does not know still has faults and latency decided for it.
        stand_in = call.api_key or ApiKey(key=presented or "", tenant="", permissions=frozenset())
        decision = faulting.decide(sandbox, req, stand_in, body)
        injected = faulting.carry_out(
            sandbox, req, call, decision, op.permission, body, path_params
        )
        if injected is not None:
            return injected
        if decision.respond is not None:
            return faulting.respond(sandbox, call, decision.respond, op.operation_id)
        fault = decision.fault
        malformed = fault if fault is not None and fault.kind == "malformed" else None
        return Exchange(self, req, call, op, path_params, body, invalid, malformed)


class Exchange:
    """A request on its way upstream: what finishing it needs once the answer is in."""

    __slots__ = ("path", "req", "call", "op", "path_params", "body", "invalid", "fault")

    def __init__(
        self,
        path: ProxyPath,
        req: Request,
        call: Call,
        op: Operation | None = None,
        path_params: dict[str, Any] | None = None,
        body: Any = None,
        invalid: ApiError | None = None,
        fault: Fault | None = None,
    ) -> None:
        self.path = path
        self.req = req
        self.call = call
        self.op = op  # None: a path outside the contract
        self.path_params = path_params or {}
        self.body = body
        self.invalid = invalid  # the sandbox's own error for the body, if it broke the schema
        self.fault = fault  # a malformed fault: cut the answer

    def complete(
        self, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """The upstream's answer, judged and journaled; returned unchanged but for the
        X-Sandbox-* headers (and a malformed fault, when one was asked for)."""
        call = self.call
        judge = self.path.judge
        if self.op is not None and self._falls_back(status):
            if not judge.is_real_answer(self.op.operation_id, status, headers, body):
                return self._fallback(f"the upstream answered {status}")
        call.source = "upstream"
        if status >= 400:
            call.answer_code = judge.error_code(headers, body)
        if call.operation_id is not None:
            call.response_problems = judge.judge(
                call.operation_id, status, headers, body, head=self.req.method == "HEAD"
            )
        response: Response | Relayed = Relayed(status, headers, body)
        if self.fault is not None:
            # A content type given (the one the headers below replace): without one,
            # werkzeug asks the empty headers for theirs, and a miss there raises.
            response = Response(body, status=status, content_type="application/octet-stream")
            response.headers = Headers(headers)
            response = faulting.malformed(response, call, self.fault)
        return _sent(_finished(self.path.sandbox, self.req, call, response, self.path.recorder))

    def fail(
        self, upstream: str, failure: str, reason: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """The upstream did not answer (``failure``: unreachable, timeout, reset...)."""
        if self.op is not None and self._falls_back(None):
            return self._fallback(f"the upstream failed ({failure}: {reason[:120]})")
        response = render_error(UpstreamUnavailable(upstream, failure, reason), self.call)
        return _sent(
            _finished(self.path.sandbox, self.req, self.call, response, self.path.recorder)
        )

    def _falls_back(self, status: int | None) -> bool:
        fallback = self.path.sandbox.settings.fallback == "sandbox"
        return fallback and (status is None or status in FALLBACK_STATUSES)

    def _fallback(self, reason: str) -> tuple[int, list[tuple[str, str]], bytes]:
        """The sandbox's own answer, as ``serve`` gives it: its key check, rate limit,
        permission and body verdict, then the view (the faults were decided already)."""
        sandbox, req, call, op = self.path.sandbox, self.req, self.call, self.op
        assert op is not None
        call.source, call.fallback = "sandbox", reason
        try:
            api_key = sandbox.keyring.authenticate(req.environ.get(API_KEY_ENVIRON))
            call.api_key = api_key
            faulting.admit(sandbox, call, api_key)
            sandbox.keyring.require(api_key, op.permission)
            if self.invalid is not None:
                raise self.invalid
            response = answer(
                sandbox, req, call, op, api_key.tenant, self.body, self.path_params, self.fault
            )
        except ApiError as error:
            response = render_error(error, call)
        except Exception:
            response = unexpected_error(req, call)
        return _sent(_finished(sandbox, req, call, response, self.path.recorder))


class Served:
    """A request as the pipeline reads it (``method``, ``path``, ``environ``), for the
    proxy, which only its own server runs: that server read the body already
    (``BODY_KEY``). Not a werkzeug Request: making one was ~3 us of each exchange, for
    three attributes."""

    __slots__ = ("environ", "method", "path", "max_content_length")

    def __init__(self, environ: dict[str, Any], max_content_length: int) -> None:
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        # As werkzeug's: PEP 3333 carries the path's bytes as latin-1, spelling UTF-8.
        path = environ.get("PATH_INFO") or ""
        if not path.isascii():
            path = path.encode("latin-1").decode("utf-8", "replace")
        self.path = "/" + path.lstrip("/")
        self.max_content_length = max_content_length

    def get_data(self, cache: bool = True) -> bytes:
        return self.environ.get(BODY_KEY) or b""


class Relayed:
    """The upstream's answer on its way back, as ``pipeline.finish`` and the recording
    read it: its status, its headers (:class:`RelayedHeaders`) and its body. Not a
    werkzeug Response: building one and setting headers through its checks was ~20 us of
    the ~145 us of Python the proxy spent per exchange (measured in-process), for an
    answer that goes out as it came."""

    __slots__ = ("status_code", "headers", "body")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status_code = status
        self.headers = RelayedHeaders(headers)
        self.body = body

    def get_data(self) -> bytes:
        return self.body


class RelayedHeaders:
    """The upstream's header pairs, in order, with the three things the pipeline does to
    headers: ``extend``, set one (replacing any of that name, any case), ``get`` one."""

    __slots__ = ("pairs", "_names")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self._names: set[str] | None = None  # lower-case, made on the first set

    def extend(self, pairs: Iterable[tuple[str, str]]) -> None:
        pairs = list(pairs)
        self.pairs.extend(pairs)
        if self._names is not None:
            self._names.update(name.lower() for name, _ in pairs)

    def __setitem__(self, name: str, value: str) -> None:
        low = name.lower()
        names = self._names
        if names is None:
            names = self._names = {n.lower() for n, _ in self.pairs}
        if low not in names:
            self.pairs.append((name, value))
            names.add(low)
            return
        # As werkzeug's Headers.set: the first of that name replaced where it stands,
        # any others dropped.
        pairs = self.pairs
        at = next(i for i, (n, _) in enumerate(pairs) if n.lower() == low)
        rest = [pair for pair in pairs[at + 1 :] if pair[0].lower() != low]
        self.pairs = [*pairs[:at], (name, value), *rest]

    def get(self, name: str, default: str | None = None) -> str | None:
        low = name.lower()
        return next((v for n, v in self.pairs if n.lower() == low), default)

    def to_wsgi_list(self) -> list[tuple[str, str]]:
        return self.pairs


def _sent(response: Response | Relayed) -> tuple[int, list[tuple[str, str]], bytes]:
    return response.status_code, response.headers.to_wsgi_list(), response.get_data()


def _finished(
    sandbox: Any, req: Request, call: Call, response: Any, recorder: Recorder | None
) -> Any:
    finish(sandbox, req, call, response)
    response.headers[SOURCE_HEADER] = call.source or "sandbox"
    environ = req.environ
    entry = environ.get(ENTRY_KEY) or {}
    broken = [
        p for p in entry.get("problems", ()) if entry.get(f"{p.get('side')}_verdict") == "violation"
    ]
    response.headers[VIOLATIONS_HEADER] = str(len(broken))
    if recorder is not None and ENVIRON_KEY not in environ:  # a dropped connection: no answer
        recorder.write(
            exchange_line(
                method=req.method,
                path=req.path,
                query=environ.get("QUERY_STRING", ""),
                tenant=call.api_key.tenant if call.api_key else None,
                request_headers=_request_headers(environ),
                request_body=environ.get(BODY_KEY) or b"",
                status=response.status_code,
                response_headers=response.headers.to_wsgi_list(),
                response_body=response.get_data(),
                entry=entry,
            )
        )
    return response


def _request_headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    headers = [("Content-Type", environ["CONTENT_TYPE"])] if environ.get("CONTENT_TYPE") else []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").title(), value))
    return headers
