"""Data ingestion: orders and interactions (needs the key's write permission)."""

from flask import Blueprint

from sandbox.api.pipeline import operation

blueprint = Blueprint("data", __name__, url_prefix="/api/data")


@blueprint.post("/ingest_orders")
@operation("ingestOrders", permission="write")
def ingest_orders(platform, tenant, body):
    return platform.ingest_orders(tenant, body)


@blueprint.post("/ingest_interactions")
@operation("ingestInteractions", permission="write")
def ingest_interactions(platform, tenant, body):
    return platform.ingest_interactions(tenant, body)
