"""The sandbox's own control API under /_sandbox (not part of the Quimbi contract)."""

from flask import Blueprint

from sandbox import __version__
from sandbox.api.pipeline import json_response

blueprint = Blueprint("control", __name__, url_prefix="/_sandbox")


@blueprint.get("/health")
def health():
    return json_response({"status": "ok", "version": __version__})
