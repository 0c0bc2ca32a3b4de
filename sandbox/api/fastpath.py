"""The nine contract operations without Flask's per-request machinery.

Flask spends about as long setting up and tearing down a request (contexts, routing,
hooks, signals) as the sandbox spends on the whole operation. This WSGI middleware sits
in front of Flask: a request whose method and path are exactly one of the operation
routes runs the same pipeline (``sandbox.api.pipeline.run``) with a plain werkzeug
request, and gets the same error rendering, headers and journal entry. Anything else
(HEAD, a trailing slash, an unknown path, a wrong method, the control API, the docs)
goes to Flask unchanged, where the same pipeline sits behind the routes.

The table is built from Flask's own URL map, so the routes are declared once (in the
blueprints) and the two paths cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from werkzeug import Request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map

from sandbox.api.pipeline import (
    AHEAD_KEY,
    API_KEY_ENVIRON,
    Operation,
    current_call,
    finish,
    http_error,
    render_error,
    run,
    send,
    unexpected_error,
)
from sandbox.errors import ApiError
from sandbox.ratelimit import Ahead

_TAIL = re.compile(r"^(?P<prefix>.*/)<(?:(?P<converter>string|path):)?(?P<name>\w+)>$")
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


async def _counted(environ: dict[str, Any], counting: Ahead) -> None:
    try:
        reply = await counting.reply
    except (TimeoutError, ConnectionError):
        return  # the store's outage now (sandbox.store.redis_ahead): the 503 follows
    if not isinstance(reply, Exception):  # an error reply: the app's own call meets it
        environ[AHEAD_KEY] = Ahead(counting.now, reply)


class FastPath:
    def __init__(
        self,
        app: WsgiApp,
        sandbox: Any,
        view_functions: dict[str, Callable[..., Any]],
        url_map: Map,
        max_body_bytes: int,
    ) -> None:
        self.app = app
        self.sandbox = sandbox
        self.counts_ahead = hasattr(sandbox.counters, "incr_many_ahead")
        self._request_class = type("ApiRequest", (Request,), {"max_content_length": max_body_bytes})
        # Routes with no parameter: (method, path) -> operation. Routes ending in one
        # parameter: (method, prefix, its name, whether it may hold "/", operation).
        self.exact: dict[tuple[str, str], Operation] = {}
        self.tails: list[tuple[str, str, str, bool, Operation]] = []
        for rule in url_map.iter_rules():
            op = getattr(view_functions.get(rule.endpoint), "operation", None)
            if op is None:
                continue
            tail = _TAIL.match(rule.rule)
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
                if not rule.arguments:
                    self.exact[(method, rule.rule)] = op
                elif tail is not None and "<" not in tail["prefix"]:
                    prefix, converter, name = tail["prefix"], tail["converter"], tail["name"]
                    self.tails.append((method, prefix, name, converter == "path", op))
                # Any other shape of route stays with Flask's router.

    def _match(self, environ: dict[str, Any]) -> tuple[Operation, dict[str, Any]] | None:
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")
        op = self.exact.get((method, path))
        if op is not None:
            return op, {}
        for route_method, prefix, name, slashes, op in self.tails:
            if method != route_method or not path.startswith(prefix):
                continue
            value = path[len(prefix) :]
            # As werkzeug's converters: "path" is anything not starting with "/", the
            # default is anything without one; never empty.
            if not value or value.startswith("/") or (not slashes and "/" in value):
                continue
            # PEP 3333 carries the path's bytes as latin-1; werkzeug's router decodes UTF-8.
            return op, {name: value.encode("latin-1").decode("utf-8", "replace")}
        return None

    def ahead(self, environ: dict[str, Any]) -> Awaitable[None] | None:
        """For the server, before it runs the app on this request: the pipeline's one
        store call (its rate-limit count, with the store's view of the request), made
        on the event loop by a store that can (Redis: ``sandbox.store.redis_ahead``).
        None when the pipeline would not count the request (not an operation, a key
        that fails), so the count is never made twice or where it would not be."""
        if not self.counts_ahead or self._match(environ) is None:
            return None
        try:
            api_key = self.sandbox.keyring.authenticate(environ.get(API_KEY_ENVIRON))
        except ApiError:
            return None
        if api_key.rate_limited:  # refused without counting
            return None
        counting = self.sandbox.limiter.admit_ahead(api_key.key, api_key.tenant)
        return None if counting is None else _counted(environ, counting)

    def close(self) -> None:
        """The server is done: the store's loop-side connection goes."""
        close = getattr(self.sandbox.counters, "close_ahead", None)
        if close is not None:
            close()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        found = self._match(environ)
        if found is None:
            return self.app(environ, start_response)
        op, path_params = found
        # Not written back into the environ: that reference cycle (environ -> request ->
        # environ) made every request garbage only the cycle collector could free.
        req = self._request_class(environ, populate_request=False)
        call = current_call(environ)
        try:
            response = run(self.sandbox, req, call, op, path_params)
        except ApiError as error:
            response = render_error(error, call)
        except HTTPException as exc:
            response = http_error(exc, req, call)
        except Exception:
            response = unexpected_error(req, call)
        finish(self.sandbox, req, call, response)
        return send(response, environ, start_response)
