"""Industry benchmarks and where a tenant stands against its industry.

A tenant's own figures come from its customer base: the magic customers, a fixed
sample of generated customers (the same ids for every run of a seed), and whatever the
caller passes in addition (e.g. ingested customers).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sandbox.errors import IndustryNotFound
from sandbox.personas import rules
from sandbox.personas.history import History
from sandbox.resources import load_yaml

SAMPLE_SIZE = 150


def load_benchmarks(path: Path) -> dict[str, dict[str, Any]]:
    document = load_yaml(path.read_text(encoding="utf-8")) or {}
    return {
        name: {"industry": name, **values}
        for name, values in (document.get("industries") or {}).items()
    }


def benchmarks_for(table: dict[str, dict[str, Any]], industry: str) -> dict[str, Any]:
    try:
        return table[industry]
    except KeyError:
        raise IndustryNotFound(industry, table) from None


def sample_customer_ids(tenant: str) -> list[str]:
    return [f"{tenant}_customer_{index:04d}" for index in range(SAMPLE_SIZE)]


def ltv_percentile(ltv: float, bench: dict[str, Any]) -> str:
    p = bench["ltv_percentiles"]
    if ltv >= p["p75"]:
        return "top_25%"
    if ltv >= p["p50"]:
        return "top_50%"
    if ltv >= p["p25"]:
        return "bottom_50%"
    return "bottom_25%"


def churn_vs_industry(churn: float, avg_churn: float) -> str:
    """Within 5 % of the industry average counts as the same."""
    if churn < avg_churn * 0.95:
        return "better"
    if churn > avg_churn * 1.05:
        return "worse"
    return "same"


def position(histories: Iterable[History], industry: str, bench: dict[str, Any]) -> dict[str, Any]:
    churns, ltvs = [], []
    for history in histories:
        m = history.metrics
        churns.append(rules.churn_risk(m))
        ltvs.append(m.lifetime_value_cents / 100)
    churn = round(sum(churns) / len(churns), 3) if churns else 0.0
    ltv = round(sum(ltvs) / len(ltvs), 2) if ltvs else 0.0
    return {
        "industry": industry,
        "my_metrics": {"churn": churn, "ltv": ltv},
        "industry_benchmarks": {
            "avg_churn": bench["avg_churn"],
            "avg_ltv": bench["avg_ltv"],
        },
        "comparison": {
            "churn_vs_industry": churn_vs_industry(churn, bench["avg_churn"]),
            "ltv_percentile": ltv_percentile(ltv, bench),
        },
    }
