"""The sandbox's own control API under /_sandbox (not part of the Quimbi contract).

Health is always served and never needs a token. Everything else can be protected with
``--admin-token`` (``Authorization: Bearer <token>``) or switched off with
``--no-control`` (then it answers 404 like any unknown path).
"""

from __future__ import annotations

import hmac

from flask import Blueprint, current_app, request

from sandbox import __version__
from sandbox.api.pipeline import json_response
from sandbox.errors import EndpointNotFound, InvalidAdminToken, StoreUnavailable

blueprint = Blueprint("control", __name__, url_prefix="/_sandbox")
OPEN_ENDPOINTS = {"control.health"}


@blueprint.before_request
def guard():
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    settings = current_app.extensions["quimbi"].settings
    if not settings.control:
        raise EndpointNotFound(request.method, request.path)
    if settings.admin_token:
        presented = request.headers.get("Authorization", "")
        expected = f"Bearer {settings.admin_token}"
        if not hmac.compare_digest(presented.encode(), expected.encode()):
            raise InvalidAdminToken()
    return None


@blueprint.get("/health")
def health():
    # Asks the store, so a container whose Redis is gone turns unhealthy.
    try:
        current_app.extensions["quimbi"].store.ping()
    except StoreUnavailable as exc:
        body = {"status": "degraded", "store": "unreachable", "version": __version__}
        return json_response(body, 503, exc.headers)
    return json_response({"status": "ok", "version": __version__})


from sandbox.control import faults, state  # noqa: E402,F401  (they register their routes)
