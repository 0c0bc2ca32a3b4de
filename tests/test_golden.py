"""Golden files: every magic customer on every endpoint, so any output change is a diff.

Regenerate on purpose with `QUIMBI_UPDATE_GOLDEN=1 pytest tests/test_golden.py`, then
review the diff like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sandbox.app import create_app
from sandbox.personas.model import load_magic_customers
from sandbox.resources import fixtures_dir

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("QUIMBI_UPDATE_GOLDEN") == "1"
HEADERS = {"X-API-Key": "qpk_test_sandbox"}
MAGIC = sorted(load_magic_customers(fixtures_dir() / "customers.yaml"))
MESSAGE_CONTEXT = {
    "goal": "resolve_support_issue",
    "channel": "email",
    "conversation": [{"from": "customer", "content": "My fabric order arrived late."}],
    "constraints": {"tone": "empathetic", "length": "medium"},
}
TICKET = {"ticket": {"subject": "Damaged rotary cutter", "priority": "high", "channel": "email"}}


@pytest.fixture(scope="module")
def golden_client():
    return create_app().test_client()  # default seed: what integrators see


def responses_for(client, customer_id: str) -> dict[str, tuple[int, object]]:
    def post(path: str, body: dict) -> tuple[int, object]:
        response = client.post(path, json=body, headers=HEADERS)
        return response.status_code, response.get_json()

    out = {
        "analyzeCustomer": post("/api/intelligence/analyze", {"customer_id": customer_id}),
        "predictChurn": post("/api/intelligence/predict/churn", {"customer_id": customer_id}),
        "predictLtv": post("/api/intelligence/predict/ltv", {"customer_id": customer_id}),
    }
    status, profile = out["analyzeCustomer"]
    if status == 200:
        out["generateMessage"] = post(
            "/api/generation/message", {"customer_profile": profile, "context": MESSAGE_CONTEXT}
        )
        out["recommendActions"] = post(
            "/api/generation/actions",
            {"customer_profile": profile, "scenario": "support_ticket", "context": TICKET},
        )
    return out


def check(path: Path, status: int, body: object) -> None:
    document = {"status": status, "body": body}
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    assert path.exists(), f"{path} missing: run with QUIMBI_UPDATE_GOLDEN=1 and review"
    assert json.loads(path.read_text()) == document, f"{path} changed"


@pytest.mark.parametrize("customer_id", MAGIC)
def test_magic_customer_matches_golden(golden_client, contract, customer_id):
    for operation_id, (status, body) in responses_for(golden_client, customer_id).items():
        assert contract.validate_response(operation_id, status, body) == []
        check(GOLDEN / customer_id / f"{operation_id}.json", status, body)


@pytest.mark.parametrize("key", ["qpk_test_sandbox", "qpk_test_acme"])
def test_insights_match_golden(golden_client, key):
    response = golden_client.get("/api/insights/my-position", headers={"X-API-Key": key})
    check(
        GOLDEN / "insights" / f"my-position-{key}.json", response.status_code, response.get_json()
    )


def test_golden_files_cover_exactly_the_magic_customers():
    on_disk = {p.name for p in GOLDEN.iterdir() if p.is_dir()} - {"insights"}
    assert on_disk == set(MAGIC)
