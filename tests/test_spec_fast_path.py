"""The compiled fast path of request validation never changes a verdict.

``Contract.validate_request`` and ``unknown_request_fields`` ask ``jsonschema_rs`` first
and the Python validator only when it says no. These tests compare them with the Python
validator alone on the contract's examples and on mutations of them that break types,
required fields, formats, patterns, bounds and unknown fields.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.spec import Contract, _problems

BREAKERS: list[Any] = [
    None,
    True,
    0,
    12.0,
    -1,
    10**30,
    1e308,
    "",
    "x" * 300,
    "2024-01-15",
    "2024-01-15T10:30:00",
    "2024-13-40T10:30:00Z",
    "2024-01-15T10:30:00.123456789Z",
    "a\n",
    "Ünïcödé",
    [],
    {},
]


def _request_examples(contract: Contract, operation_id: str) -> list[Any]:
    operation = contract.operation(operation_id)
    spec_op = contract.document["paths"][operation.path][operation.method.lower()]
    media = spec_op["requestBody"]["content"]["application/json"]
    examples = [media["example"]] if "example" in media else []
    for example in media.get("examples", {}).values():
        if "$ref" in example:
            example = contract.resolve(example["$ref"])
        examples.append(example["value"])
    return examples


def _mutations(value: Any) -> Iterator[Any]:
    """``value`` with one place changed: each leaf replaced, each key dropped, one added."""
    yield from BREAKERS
    if isinstance(value, dict):
        yield {**value, "unexpected_field": 1}
        for key, inner in value.items():
            yield {k: v for k, v in value.items() if k != key}
            for changed in _mutations(inner):
                yield {**value, key: changed}
    elif isinstance(value, list) and value:
        yield value + value
        for changed in _mutations(value[0]):
            yield [changed, *value[1:]]


def _bodies(contract: Contract) -> Iterator[tuple[str, Any]]:
    for operation_id, operation in contract.operations.items():
        if operation.request_validator is None:
            continue
        for example in _request_examples(contract, operation_id):
            yield operation_id, example
            for mutated in _mutations(copy.deepcopy(example)):
                yield operation_id, mutated


def _assert_same_verdicts(contract: Contract, operation_id: str, body: Any) -> None:
    operation = contract.operation(operation_id)
    assert contract.validate_request(operation_id, body) == _problems(
        operation.request_validator, body
    )
    assert contract.validate_request(operation_id, body, strict=True) == _problems(
        operation.strict_request_validator, body
    )
    expected_unknown = [
        p
        for p in _problems(operation.strict_request_validator, body)
        if "Additional properties are not allowed" in p.message
    ]
    assert contract.unknown_request_fields(operation_id, body) == expected_unknown


def test_every_request_body_has_a_fast_validator(contract: Contract) -> None:
    with_body = [op for op in contract.operations.values() if op.request_validator is not None]
    assert with_body
    for operation in with_body:
        assert operation.fast_request_validator is not None
        assert operation.fast_strict_request_validator is not None


def test_fast_path_gives_the_python_verdict_on_examples_and_mutations(contract: Contract) -> None:
    checked = invalid = 0
    for operation_id, body in _bodies(contract):
        _assert_same_verdicts(contract, operation_id, body)
        checked += 1
        invalid += bool(contract.validate_request(operation_id, body))
    # The mutations really do reach the slow path, and the examples the fast one.
    assert invalid > 100 and checked - invalid > 10


def test_fast_validator_checks_date_time_like_the_python_one(contract: Contract) -> None:
    fast = contract.operation("ingestOrders").fast_request_validator
    order = {
        "customer_id": "c1",
        "order_id": "o1",
        "order_date": "2024-01-15T10:30:00Z",
        "total_price": 10.0,
    }
    assert fast.is_valid({"source": "shopify", "orders": [order]})
    for bad in ("2024-01-15", "2024-01-15 10:30:00Z", "2024-02-30T10:30:00Z"):
        body = {"source": "shopify", "orders": [{**order, "order_date": bad}]}
        assert not fast.is_valid(body)
        assert contract.validate_request("ingestOrders", body)


def test_surrogate_keys_fall_back_to_the_python_validator(contract: Contract) -> None:
    body = {"customer_id": "c1", "context": {}, "\ud800": 1}
    _assert_same_verdicts(contract, "analyzeCustomer", body)


# Keys the contract uses, so drawn bodies get past the top level into the real schemas.
KEYS = st.sampled_from(
    ["customer_id", "context", "orders", "order_id", "order_date", "total_price", "items",
     "interactions", "interaction_type", "timestamp", "customer_profile", "scenario",
     "horizon_months", "product_id", "quantity", "price", "x"]
)  # fmt: skip
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(operation_index=st.integers(min_value=0), body=JSON)
def test_fast_path_gives_the_python_verdict_on_any_json(
    contract: Contract, operation_index: int, body: Any
) -> None:
    with_body = sorted(
        op.operation_id for op in contract.operations.values() if op.request_validator
    )
    _assert_same_verdicts(contract, with_body[operation_index % len(with_body)], body)


@pytest.mark.parametrize("operation_id", ["analyzeCustomer", "ingestOrders", "generateMessage"])
def test_valid_examples_pass_the_fast_validator(contract: Contract, operation_id: str) -> None:
    fast = contract.operation(operation_id).fast_request_validator
    assert all(fast.is_valid(example) for example in _request_examples(contract, operation_id))


def test_response_fast_path_gives_the_python_verdict(contract: Contract) -> None:
    """``validate_response`` (the proxy's judge of every answer) asks jsonschema_rs first
    too: on generated answers of every documented status and on mutations of them, its
    verdict is the Python validator's alone."""
    from sandbox.generated import AnswerGenerator, CaseId

    generator = AnswerGenerator(contract)
    checked = invalid = 0
    for operation_id, operation in contract.operations.items():
        for key in operation.response_pointers:
            status = int(key) if key.isdigit() else 500
            answer = generator.case(CaseId(3, operation_id, 1, status)).body
            for body in [answer, *_mutations(copy.deepcopy(answer))]:
                python = _problems(operation.response_validators[key], body)
                assert contract.validate_response(operation_id, status, body) == python
                checked += 1
                invalid += bool(python)
    assert invalid > 100 and checked - invalid > 20
