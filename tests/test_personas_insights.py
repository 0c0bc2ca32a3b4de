from __future__ import annotations

import pytest

from sandbox.personas.insights import churn_vs_industry, load_benchmarks, ltv_percentile
from sandbox.resources import fixtures_dir


@pytest.fixture(scope="module")
def benchmarks():
    return load_benchmarks(fixtures_dir() / "benchmarks.yaml")


def test_at_least_six_industries_with_ordered_percentiles(benchmarks, contract):
    assert len(benchmarks) >= 6
    assert {"retail", "ecommerce", "saas"} <= set(benchmarks)
    for name, bench in benchmarks.items():
        assert contract.validate_response("getIndustryBenchmarks", 200, bench) == [], name
        for metric, average in (("ltv_percentiles", "avg_ltv"), ("churn_percentiles", "avg_churn")):
            p = bench[metric]
            assert p["p25"] <= p["p50"] <= p["p75"], name
            assert p["p25"] <= bench[average] <= p["p75"], name


def test_retail_has_the_reference_figures(benchmarks):
    retail = benchmarks["retail"]
    assert (retail["based_on_companies"], retail["avg_ltv"], retail["avg_churn"]) == (8, 425, 0.265)
    assert retail["ltv_percentiles"] == {"p25": 280, "p50": 420, "p75": 580}


def test_position_rules(benchmarks):
    retail = benchmarks["retail"]
    assert [ltv_percentile(x, retail) for x in (600, 580, 500, 300, 100)] == [
        "top_25%",
        "top_25%",
        "top_50%",
        "bottom_50%",
        "bottom_25%",
    ]
    assert churn_vs_industry(0.2, 0.265) == "better"
    assert churn_vs_industry(0.265, 0.265) == "same"
    assert churn_vs_industry(0.3, 0.265) == "worse"


def test_two_tenants_get_different_stable_positions(client):
    def position(key: str) -> dict:
        response = client.get("/api/insights/my-position", headers={"X-API-Key": key})
        assert response.status_code == 200
        return response.get_json()

    linda, acme = position("qpk_test_sandbox"), position("qpk_test_acme")
    assert linda["industry"] == "retail" and acme["industry"] == "ecommerce"
    assert linda["my_metrics"] != acme["my_metrics"]
    assert position("qpk_test_sandbox") == linda
