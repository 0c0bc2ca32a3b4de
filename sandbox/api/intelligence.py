"""Customer intelligence: analyze, predict/churn, predict/ltv."""

from flask import Blueprint

from sandbox.api.pipeline import operation

blueprint = Blueprint("intelligence", __name__, url_prefix="/api/intelligence")


@blueprint.post("/analyze")
@operation("analyzeCustomer")
def analyze(platform, tenant, body):
    return platform.analyze(tenant, body)


@blueprint.post("/predict/churn")
@operation("predictChurn")
def predict_churn(platform, tenant, body):
    return platform.predict_churn(tenant, body)


@blueprint.post("/predict/ltv")
@operation("predictLtv")
def predict_ltv(platform, tenant, body):
    return platform.predict_ltv(tenant, body)
