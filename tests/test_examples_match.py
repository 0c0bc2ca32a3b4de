"""Every response example in openapi.yaml is what the sandbox answers to its request.

/docs shows each operation's examples beside "Try it out": an integrator who codes
against an example and then runs against the sandbox must not see two truths. A 200
example pairs with the request example of the same name (a GET with the path
parameters' examples) and must equal what a fresh sandbox answers, with the default
seed and the key /docs pre-fills. The only exceptions are generated fields the example
cannot know, listed in GENERATED, and the example's description must say so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from sandbox.app import create_app
from sandbox.docs import DEFAULT_KEY
from sandbox.personas.model import load_magic_customers
from sandbox.resources import contract_path, fixtures_dir

# The magic customers: every tenant has them, and the README documents each.
DOCUMENTED_CUSTOMERS = tuple(load_magic_customers(fixtures_dir() / "customers.yaml"))
# (operationId, example name) -> top-level fields whose content is generated per request.
GENERATED: dict[tuple[str, str], tuple[str, ...]] = {
    ("generateMessage", "supportReply"): ("message",),
}


@dataclass(frozen=True)
class Example:
    operation_id: str
    name: str
    method: str
    path: str
    request: Any  # None for a request without a body
    expected: Any
    description: str

    def __str__(self) -> str:
        return f"{self.operation_id}:{self.name}"

    def names_a_documented_customer(self) -> bool:
        text = json.dumps([self.request, self.expected])
        return any(customer in text for customer in DOCUMENTED_CUSTOMERS)


def response_examples() -> list[Example]:
    document = yaml.safe_load(contract_path().read_text(encoding="utf-8"))
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            requests = (body or {}).get("examples", {})
            url = path
            for parameter in operation.get("parameters", []):
                url = url.replace("{" + parameter["name"] + "}", str(parameter["example"]))
            answer = operation["responses"].get("200", {}).get("content", {})
            for name, example in answer.get("application/json", {}).get("examples", {}).items():
                if body is not None:
                    assert name in requests, (
                        f"{operation['operationId']}: response example {name!r} has no request "
                        "example of the same name, so nobody can check it"
                    )
                found.append(
                    Example(
                        operation["operationId"],
                        name,
                        method.upper(),
                        url,
                        requests[name]["value"] if body is not None else None,
                        example["value"],
                        example.get("description", ""),
                    )
                )
    return found


EXAMPLES = response_examples()


def answer(example: Example, key: str = DEFAULT_KEY, **settings: Any) -> Any:
    # A fresh sandbox per example: an ingestion example must not change another's answer.
    client = create_app(**settings).test_client()
    headers = {"X-API-Key": key}
    response = client.open(
        example.path, method=example.method, json=example.request, headers=headers
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def without_generated(example: Example, body: dict[str, Any]) -> dict[str, Any]:
    generated = GENERATED.get((example.operation_id, example.name), ())
    for field in generated:
        assert isinstance(body.get(field), str) and body[field], f"{example}: no {field} text"
    return {k: v for k, v in body.items() if k not in generated}


def test_the_contract_has_examples_naming_the_documented_customers():
    named = {c for c in DOCUMENTED_CUSTOMERS for e in EXAMPLES if c in json.dumps(e.expected)}
    assert {"test_customer_high_ltv", "test_customer_low_ltv"} <= named
    assert set(GENERATED) <= {(e.operation_id, e.name) for e in EXAMPLES}


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_response_example_is_what_the_sandbox_answers(example):
    got = answer(example)
    assert without_generated(example, got) == without_generated(example, example.expected)


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_excepted_fields_are_named_in_the_examples_description(example):
    for field in GENERATED.get((example.operation_id, example.name), ()):
        assert re.search(rf"`{field}`[^.]*generated", example.description), (
            f"{example}: the description must say that `{field}` is generated"
        )


# Documented customers are the same in every tenant, for every seed and on every day
# (a frozen clock anchors histories at the moment it was frozen).
@pytest.mark.parametrize(
    "example", [e for e in EXAMPLES if e.names_a_documented_customer()], ids=str
)
@pytest.mark.parametrize(
    "settings",
    [
        {"seed": 7, "key": "qpk_test_acme"},
        {"seed": 123, "now": "2024-01-15T10:30:00Z"},
    ],
    ids=["other-tenant-and-seed", "frozen-clock"],
)
def test_documented_customers_examples_hold_in_every_tenant_seed_and_day(example, settings):
    got = answer(example, **settings)
    assert without_generated(example, got) == without_generated(example, example.expected)
