"""Interactive API docs: /docs (Swagger UI) and the contract at /openapi.yaml and .json.

Owns serving the contract to people and tools. These routes need no API key and stay
out of the /api/ pipeline: they describe the API, they are not part of it. Swagger UI's
assets ship in the package (static/swagger-ui, see its README), so the page works
offline.
"""

from __future__ import annotations

import copy
from typing import Any

from flask import Blueprint, Response, current_app, render_template, send_file

from sandbox.api.pipeline import json_response
from sandbox.resources import contract_path

# The key "try it out" starts with: the default sandbox key (fixtures/keys.yaml).
DEFAULT_KEY = "qpk_test_sandbox"
# A relative server URL resolves against wherever the document was fetched from, so
# "try it out" calls the sandbox that served the page, also behind a proxy that
# rewrites the Host header.
SERVING_SANDBOX = {"url": "/", "description": "This sandbox (the server that served this page)"}

blueprint = Blueprint(
    "docs",
    __name__,
    static_folder="static",
    static_url_path="/docs/static",
    template_folder="templates",
)


def api_key_scheme(document: dict[str, Any]) -> str:
    """The name of the contract's security scheme for the X-API-Key header."""
    schemes = document.get("components", {}).get("securitySchemes", {})
    for name, scheme in schemes.items():
        if scheme.get("type") == "apiKey" and scheme.get("in") == "header":
            return name
    raise LookupError("openapi.yaml has no apiKey security scheme in a header")


def served_document(document: dict[str, Any]) -> dict[str, Any]:
    """The contract as /openapi.json serves it: its one server is the serving sandbox."""
    served = copy.deepcopy(document)
    served["servers"] = [dict(SERVING_SANDBOX)]
    return served


@blueprint.get("/docs")
@blueprint.get("/docs/")
def page() -> str:
    document = current_app.extensions["quimbi"].contract.document
    return render_template(
        "docs.html",
        title=document["info"]["title"],
        api_key=DEFAULT_KEY,
        scheme=api_key_scheme(document),
    )


@blueprint.get("/openapi.yaml")
def contract_yaml() -> Response:
    return send_file(contract_path(), mimetype="application/yaml")


@blueprint.get("/openapi.json")
def contract_json() -> Response:
    return json_response(served_document(current_app.extensions["quimbi"].contract.document))
