"""Calls from browser pages on other origins (CORS), for every answer under ``/api/``.

A WSGI middleware in front of both the fast path and Flask, so 200s, errors (401, 422,
429, injected faults, 404 for unknown paths, 413) all carry the headers a browser needs
to let the page read them. ``--cors-origins`` says who may call:

- ``*`` (default): any origin; answers say ``Access-Control-Allow-Origin: *``. The key
  travels in a header, not a cookie, so no credentials mode is needed.
- a comma-separated list of origins: the request's ``Origin`` is echoed when listed
  (others get no CORS headers), and every ``/api/`` answer says ``Vary: Origin`` so a
  cache never serves one origin's answer to another.
- ``off``: the middleware is not installed at all.

A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is
answered here with 204, before the pipeline: it carries no key, so it must not need one,
count against a rate limit or be journaled. A plain ``OPTIONS`` is not a preflight and
goes on to Flask as before. Only requests that carry ``Origin`` get the headers (with
``*``), so the non-browser hot path pays one dict lookup. No Flask here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.routing import Map

API_PREFIX = "/api/"
OFF = "off"
ANY_ORIGIN = "*"
# What a page may send: the key, the JSON body's type and the sandbox's own request
# headers. Listed one by one: browsers take no "X-Sandbox-*" pattern.
ALLOWED_REQUEST_HEADERS = (
    "X-API-Key",
    "Content-Type",
    "X-Sandbox-Fault",
    "X-Sandbox-Latency",
    "X-Sandbox-Response",
)
# What a page may read beyond the safelisted few (Content-Type and the like).
EXPOSED_RESPONSE_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
    "Allow",
    "X-Sandbox-Fault-Injected",
    "X-Sandbox-Latency-Injected",
    "X-Sandbox-Case",
)
PREFLIGHT_MAX_AGE_SECONDS = 600  # Chromium caps it at 7,200; ten minutes keeps edits visible
_ORIGIN = re.compile(
    r"(?P<scheme>https?)://(?:\[[0-9a-f:.]+\]|[^/?#@\s:\[\]]+)(?::(?P<port>\d{1,5}))?"
)
_DEFAULT_PORTS = {"http": "80", "https": "443"}  # left out of the Origin browsers send

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def parse_origins(text: str) -> str:
    """``*``, ``off`` or a comma list of ``scheme://host[:port]``, normalised as browsers
    send ``Origin`` (lower case, no trailing slash); ``ValueError`` says what is wrong."""
    stripped = text.strip()
    if stripped.lower() in {ANY_ORIGIN, OFF}:
        return stripped.lower()
    origins = []
    for part in stripped.split(","):
        origin = part.strip().rstrip("/").lower()
        match = _ORIGIN.fullmatch(origin)
        if match is None:
            raise ValueError(
                f"{origin!r} is not an origin like http://localhost:3000 "
                "(the value is *, off, or a comma-separated list of origins)"
            )
        if match["port"] == _DEFAULT_PORTS[match["scheme"]]:
            origin = origin[: match.start("port") - 1]
        origins.append(origin)
    return ",".join(dict.fromkeys(origins))


def with_cors(app: WsgiApp, origins: str, url_map: Map) -> WsgiApp:
    """``app`` behind the CORS middleware, or ``app`` itself when ``origins`` is off.
    Parsed again: settings made in code (``create_app(cors_origins=...)``) skip the CLI's
    parsing."""
    origins = parse_origins(origins)
    return app if origins == OFF else Cors(app, origins, url_map)


class Cors:
    """The middleware; ``origins`` is ``*`` or a parsed list (see :func:`parse_origins`)."""

    def __init__(self, app: WsgiApp, origins: str, url_map: Map) -> None:
        self.app = app
        self.any_origin = origins == ANY_ORIGIN
        self.listed = frozenset() if self.any_origin else frozenset(origins.split(","))
        self._routes = url_map.bind("sandbox")
        # An unknown /api/ path still passes its preflight, with the methods the API uses,
        # so the page can read the 404 envelope instead of an opaque network error.
        self._api_methods = _without_implicit(
            method
            for rule in url_map.iter_rules()
            if rule.rule.startswith(API_PREFIX)
            for method in rule.methods or ()
        )
        self._exposed = ("Access-Control-Expose-Headers", ", ".join(EXPOSED_RESPONSE_HEADERS))
        self._allowed_headers = ("Access-Control-Allow-Headers", ", ".join(ALLOWED_REQUEST_HEADERS))
        self._max_age = ("Access-Control-Max-Age", str(PREFLIGHT_MAX_AGE_SECONDS))
        # With a list, an answer depends on the Origin asked with: caches must key on it.
        self._vary: list[tuple[str, str]] = [] if self.any_origin else [("Vary", "Origin")]
        self._any_origin_headers = [("Access-Control-Allow-Origin", ANY_ORIGIN), self._exposed]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        origin = environ.get("HTTP_ORIGIN")
        if (origin is None and self.any_origin) or not environ.get("PATH_INFO", "").startswith(
            API_PREFIX
        ):
            return self.app(environ, start_response)
        allowed = self._allowed_origin(origin)
        if (
            origin is not None
            and environ.get("REQUEST_METHOD") == "OPTIONS"
            and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ
        ):
            return self._preflight(environ, start_response, allowed)
        if self.any_origin:
            headers = self._any_origin_headers
        elif allowed is None:
            headers = self._vary
        else:
            headers = [*self._vary, ("Access-Control-Allow-Origin", allowed), self._exposed]

        def start_with_cors(status: str, app_headers: list[tuple[str, str]], exc_info=None):
            return start_response(status, [*app_headers, *headers], exc_info)

        return self.app(environ, start_with_cors)

    def _allowed_origin(self, origin: str | None) -> str | None:
        """What ``Access-Control-Allow-Origin`` says to this origin; None: nothing."""
        if self.any_origin:
            return ANY_ORIGIN
        return origin if origin in self.listed else None

    def _preflight(
        self, environ: dict[str, Any], start_response: Callable[..., Any], allowed: str | None
    ) -> list[bytes]:
        headers = self._vary[:]
        if allowed is not None:
            path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
            methods = _without_implicit(self._routes.allowed_methods(path)) or self._api_methods
            headers += [
                ("Access-Control-Allow-Origin", allowed),
                ("Access-Control-Allow-Methods", ", ".join(methods)),
                self._allowed_headers,
                self._max_age,
            ]
        start_response("204 No Content", headers)
        return []


def _without_implicit(methods: Iterable[str]) -> list[str]:
    """The methods a route declares; HEAD and OPTIONS werkzeug adds on its own (and a
    browser never needs a preflight's permission for HEAD)."""
    return sorted(set(methods) - {"HEAD", "OPTIONS"})
