"""The X-RateLimit-* and Retry-After headers match the header schemas in openapi.yaml."""

from __future__ import annotations

from jsonschema import Draft202012Validator

from sandbox.app import create_app
from sandbox.spec import Contract
from tests.test_api_http import request_examples


def header_problems(contract: Contract, operation_id: str, status: int, headers) -> list[str]:
    """Each required header present, each documented header's value valid for its schema."""
    op = contract.operation(operation_id)
    response = contract.document["paths"][op.path][op.method.lower()]["responses"][str(status)]
    if "$ref" in response:
        response = contract.resolve(response["$ref"])
    problems = []
    for name, spec in response.get("headers", {}).items():
        if "$ref" in spec:
            spec = contract.resolve(spec["$ref"])
        value = headers.get(name)
        if value is None:
            if spec.get("required"):
                problems.append(f"{status} {operation_id}: {name} missing")
            continue
        parsed: object = value
        if spec["schema"].get("type") == "integer":
            try:
                parsed = int(value)
            except ValueError:
                problems.append(f"{status} {operation_id}: {name}={value!r} is not an integer")
                continue
        for error in Draft202012Validator(spec["schema"]).iter_errors(parsed):
            problems.append(f"{status} {operation_id}: {name}={value!r}: {error.message}")
    return problems


def call(client, contract, operation_id, body, key="qpk_test_sandbox"):
    op = contract.operation(operation_id)
    path = op.path.replace("{industry}", "retail")
    if op.method == "POST":
        return client.post(path, json=body, headers={"X-API-Key": key})
    return client.get(path, headers={"X-API-Key": key})


def test_every_200_and_429_carries_the_documented_headers(contract):
    cases = request_examples(contract)
    assert {op for op, _, _ in cases} == set(contract.operations)
    for rate_limit in ["default", "off"]:
        client = create_app(seed=7, rate_limit=rate_limit).test_client()
        for operation_id, _, body in cases:
            response = call(client, contract, operation_id, body)
            assert response.status_code == 200, (operation_id, response.get_data(as_text=True))
            assert header_problems(contract, operation_id, 200, response.headers) == []
            limited = call(client, contract, operation_id, body, key="qpk_test_ratelimited")
            assert limited.status_code == 429
            assert header_problems(contract, operation_id, 429, limited.headers) == []


def test_a_real_429_carries_the_documented_headers(contract):
    client = create_app(seed=7, rate_limit="1/min").test_client()
    body = {"customer_id": "test_customer_new"}
    assert call(client, contract, "predictChurn", body).status_code == 200
    refused = call(client, contract, "predictChurn", body)
    assert refused.status_code == 429
    assert "X-Sandbox-Fault-Injected" not in refused.headers
    assert header_problems(contract, "predictChurn", 429, refused.headers) == []


def test_the_checker_catches_missing_and_bad_headers(contract):
    good = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "17"}
    assert header_problems(contract, "predictLtv", 200, good) == []
    assert header_problems(contract, "predictLtv", 200, {**good, "X-RateLimit-Remaining": "-1"})
    assert header_problems(contract, "predictLtv", 429, good)  # no Retry-After
    missing = dict(good)
    del missing["X-RateLimit-Reset"]
    assert header_problems(contract, "predictLtv", 200, missing)
    assert header_problems(contract, "predictLtv", 200, {**good, "X-RateLimit-Limit": "lots"})
