"""Generation: AI message drafts and recommended next actions."""

from flask import Blueprint

from sandbox.api.pipeline import operation

blueprint = Blueprint("generation", __name__, url_prefix="/api/generation")


@blueprint.post("/message")
@operation("generateMessage")
def generate_message(platform, tenant, body):
    return platform.generate_message(tenant, body)


@blueprint.post("/actions")
@operation("recommendActions")
def recommend_actions(platform, tenant, body):
    return platform.recommend_actions(tenant, body)
