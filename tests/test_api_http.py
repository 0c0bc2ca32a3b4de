"""Every operation through a real server process, each answer checked against the contract."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sandbox.spec import Contract

# The project's own copy of the integration guide: every snippet in it must work as written.
GUIDE = Path(__file__).resolve().parent / "data" / "INTEGRATION_GUIDE.md"


def request_examples(contract: Contract) -> list[tuple[str, str, object]]:
    cases = []
    for op in contract.operations.values():
        spec_op = contract.document["paths"][op.path][op.method.lower()]
        content = spec_op.get("requestBody", {}).get("content", {}).get("application/json")
        if content is None:
            cases.append((op.operation_id, "no-body", None))
            continue
        for name, example in content["examples"].items():
            cases.append((op.operation_id, name, example["value"]))
    return cases


def test_every_operation_answers_each_request_example_with_a_valid_body(server, contract):
    cases = request_examples(contract)
    assert {op for op, _, _ in cases} == set(contract.operations)
    for operation_id, name, body in cases:
        op = contract.operation(operation_id)
        path = op.path.replace("{industry}", "retail")
        response = server.post(path, body) if op.method == "POST" else server.get(path)
        assert response.status_code == 200, (operation_id, name, response.text)
        assert response.headers["Content-Type"] == "application/json"
        problems = contract.validate_response(operation_id, 200, response.json())
        assert problems == [], (operation_id, name, problems)


@pytest.mark.parametrize(
    "customer_id",
    ["test_customer_high_ltv", "test_customer_low_ltv", "test_customer_new", "cust_48213"],
)
def test_customer_endpoints_answer_for_documented_and_other_ids(server, contract, customer_id):
    for operation_id, path in [
        ("analyzeCustomer", "/api/intelligence/analyze"),
        ("predictChurn", "/api/intelligence/predict/churn"),
        ("predictLtv", "/api/intelligence/predict/ltv"),
    ]:
        response = server.post(path, {"customer_id": customer_id})
        assert response.status_code == 200, response.text
        assert contract.validate_response(operation_id, 200, response.json()) == []
        assert response.json()["customer_id"] == customer_id


def test_documented_test_customers_have_their_documented_character(server):
    def analyze(customer_id: str) -> dict:
        return server.post("/api/intelligence/analyze", {"customer_id": customer_id}).json()

    high, low, new = (analyze(f"test_customer_{k}") for k in ("high_ltv", "low_ltv", "new"))
    assert high["behavioral_metrics"]["lifetime_value"] > 0
    assert (
        high["behavioral_metrics"]["lifetime_value"] > low["behavioral_metrics"]["lifetime_value"]
    )
    assert high["predictions"]["churn_risk_level"] == "low"
    assert low["predictions"]["churn_risk"] > high["predictions"]["churn_risk"]
    assert low["predictions"]["churn_risk_level"] == "high"
    assert new["behavioral_metrics"]["total_orders"] == 0
    assert new["behavioral_metrics"]["lifetime_value"] == 0
    assert new["archetype"]["segments"]["shopping_maturity"] == "new"


def guide_step2_curl() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    block = re.search(r"### Step 2: Test Connection.*?```bash\n(.*?)```", text, re.S)
    assert block, "the guide's Step 2 curl block was not found"
    return block.group(1)


def test_the_guides_step2_curl_works_as_written(server, contract):
    curl = shutil.which("curl")
    assert curl, "curl is not installed (scripts/test.sh installs it)"
    script = guide_step2_curl()
    assert "curl -X POST $QUIMBI_BASE_URL/api/intelligence/analyze" in script
    env = {**os.environ, "QUIMBI_BASE_URL": server.url, "QUIMBI_API_KEY": "qpk_live_abc123xyz"}
    result = subprocess.run(
        ["bash", "-c", "set -e\n" + script.replace("curl ", "curl -sS --fail-with-body ", 1)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    import json

    body = json.loads(result.stdout)
    assert contract.validate_response("analyzeCustomer", 200, body) == []
    assert body["customer_id"] == "test_customer_high_ltv"
