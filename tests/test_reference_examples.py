"""What the documentation tells integrators to send is accepted, through a real server.

tests/data/reference_requests.yaml holds one body per call shape in the API reference's
SDK examples and the integration guide (where each comes from is said there). The
reference's message call leaves out `context.channel`; the sandbox drafts for the
documented default (`email`) and journals a warning, never a violation.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract_tests.sandbox_server import SandboxServer
from sandbox.personas.generation import DEFAULT_CHANNEL
from tests.conftest import ServerProcess

DATA = Path(__file__).resolve().parent / "data"
REQUESTS: list[dict[str, Any]] = yaml.safe_load(
    (DATA / "reference_requests.yaml").read_text(encoding="utf-8")
)["requests"]
CHANNEL_WARNING = {
    "path": "/context/channel",
    "message": 'context.channel omitted; the sandbox used the documented default "email"',
}
# Exactly the reference SDKs' call: generate_message(customer_profile=<the analyze
# answer>, context={"goal": "resolve_support_issue", "conversation": [...]}).
REFERENCE_MESSAGE_CONTEXT = {
    "goal": "resolve_support_issue",
    "conversation": [
        {"from": "customer", "content": "My fat quarter bundle arrived with two pieces missing."}
    ],
}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ServerProcess]:
    with ServerProcess("--seed", "7", "--rate-limit", "off") as running:
        yield running


def journal(server: ServerProcess, what: str = "requests") -> list[dict[str, Any]]:
    response = server.get(f"/_sandbox/{what}", key=None)
    assert response.status_code == 200, response.text
    return response.json()["requests"]


def with_analyze_answers(server: ServerProcess, value: Any) -> Any:
    """``value`` with each ``{$analyze: customer}`` replaced by that customer's analysis."""
    if isinstance(value, dict):
        if set(value) == {"$analyze"}:
            answer = server.post("/api/intelligence/analyze", {"customer_id": value["$analyze"]})
            assert answer.status_code == 200, answer.text
            return answer.json()
        return {name: with_analyze_answers(server, item) for name, item in value.items()}
    if isinstance(value, list):
        return [with_analyze_answers(server, item) for item in value]
    return value


def test_guide_quotes_are_still_in_the_guide():
    guide = (DATA / "INTEGRATION_GUIDE.md").read_text(encoding="utf-8")
    from_guide = [entry for entry in REQUESTS if entry["source"] == "guide"]
    assert from_guide
    missing = [
        (entry["name"], quote)
        for entry in from_guide
        for quote in entry.get("quote") or ["(no quote)"]
        if quote not in guide
    ]
    assert missing == []


def test_every_operation_has_a_reference_example(contract):
    assert {entry["operation"] for entry in REQUESTS} == set(contract.operations)


@pytest.mark.parametrize("entry", REQUESTS, ids=[entry["name"] for entry in REQUESTS])
def test_reference_example_is_accepted(sandbox, contract, entry):
    operation = contract.operation(entry["operation"])
    path = entry.get("path", operation.path)
    if operation.method == "POST":
        body = with_analyze_answers(sandbox, copy.deepcopy(entry["body"]))
        response = sandbox.post(path, body)
    else:
        response = sandbox.get(path)
    assert response.status_code == 200, response.text
    assert contract.validate_response(entry["operation"], 200, response.json()) == []

    recorded = [e for e in journal(sandbox) if e["path"] == path][-1]
    expected = entry.get("warnings", [])
    assert recorded["verdict"] == ("warning" if expected else "ok"), recorded
    assert [problem["path"] for problem in recorded["problems"]] == expected


def test_reference_message_call_without_channel_end_to_end(sandbox):
    assert sandbox.post("/_sandbox/reset", {}, key=None).status_code == 200  # a clean journal
    analysis = sandbox.post("/api/intelligence/analyze", {"customer_id": "test_customer_high_ltv"})
    assert analysis.status_code == 200, analysis.text
    profile = analysis.json()

    response = sandbox.post(
        "/api/generation/message",
        {"customer_profile": profile, "context": REFERENCE_MESSAGE_CONTEXT},
    )
    assert response.status_code == 200, response.text
    draft = response.json()
    assert draft["channel"] == "email"
    entry = journal(sandbox)[-1]
    assert (entry["path"], entry["status"]) == ("/api/generation/message", 200)
    assert entry["verdict"] == "warning"
    assert entry["problems"] == [CHANNEL_WARNING]
    assert journal(sandbox, "violations") == []

    # The default is email itself: naming it gives the same draft, and no warning.
    explicit = {**REFERENCE_MESSAGE_CONTEXT, "channel": "email"}
    named = sandbox.post(
        "/api/generation/message", {"customer_profile": profile, "context": explicit}
    )
    assert named.json() == draft
    assert journal(sandbox)[-1]["verdict"] == "ok"


def test_a_named_channel_is_still_honoured(sandbox):
    context = {**REFERENCE_MESSAGE_CONTEXT, "channel": "sms"}
    response = sandbox.post(
        "/api/generation/message",
        {"customer_profile": {"customer_id": "test_customer_new"}, "context": context},
    )
    assert response.status_code == 200, response.text
    assert response.json()["channel"] == "sms"
    assert len(response.json()["message"]) <= 160


def test_strict_mode_also_accepts_and_warns():
    # --strict rejects unknown fields; leaving out a field with a default is not that.
    with ServerProcess("--strict", "--rate-limit", "off") as strict:
        response = strict.post(
            "/api/generation/message",
            {"customer_profile": {"customer_id": "c_1"}, "context": REFERENCE_MESSAGE_CONTEXT},
        )
        assert response.status_code == 200, response.text
        assert journal(strict)[-1]["problems"] == [CHANNEL_WARNING]


def test_the_kit_fixture_does_not_count_the_warning_as_a_violation():
    with SandboxServer() as server:
        response = server.http.post(
            f"{server.url}/api/generation/message",
            json={"customer_profile": {"customer_id": "c_1"}, "context": REFERENCE_MESSAGE_CONTEXT},
            headers={"X-API-Key": server.api_key},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        assert server.requests()[-1]["verdict"] == "warning"
        server.assert_no_violations()


def test_the_documented_default_is_the_one_the_sandbox_uses(contract):
    context = contract.document["components"]["schemas"]["MessageContext"]
    assert "channel" not in context["required"]
    assert context["properties"]["channel"]["default"] == DEFAULT_CHANNEL == "email"
