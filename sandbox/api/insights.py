"""Insights: industry benchmarks and the calling tenant's position."""

from flask import Blueprint

from sandbox.api.pipeline import operation

blueprint = Blueprint("insights", __name__, url_prefix="/api/insights")


@blueprint.get("/benchmarks/<path:industry>")
@operation("getIndustryBenchmarks")
def industry_benchmarks(platform, tenant, body, industry):
    return platform.industry_benchmarks(industry)


@blueprint.get("/my-position")
@operation("getMyPosition")
def my_position(platform, tenant, body):
    return platform.my_position(tenant)
