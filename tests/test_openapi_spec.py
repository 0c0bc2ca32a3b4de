"""The contract itself: openapi.yaml is valid OpenAPI 3.1 and its examples obey its schemas.

These tests read only openapi.yaml; they never start the server.
"""

import copy
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parents[1] / "openapi.yaml"
SPEC_URI = "urn:quimbi:openapi"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
ERROR_REF = {"$ref": "#/components/schemas/Error"}

_POST_ERRORS = {"400", "401", "413", "415", "422", "429", "500", "503"}
_GET_ERRORS = {"401", "429", "500", "503"}
EXPECTED_OPERATIONS: dict[str, tuple[str, str, set[str]]] = {
    "analyzeCustomer": ("post", "/api/intelligence/analyze", _POST_ERRORS | {"200", "404"}),
    "predictChurn": ("post", "/api/intelligence/predict/churn", _POST_ERRORS | {"200", "404"}),
    "predictLtv": ("post", "/api/intelligence/predict/ltv", _POST_ERRORS | {"200", "404"}),
    "generateMessage": ("post", "/api/generation/message", _POST_ERRORS | {"200"}),
    "recommendActions": ("post", "/api/generation/actions", _POST_ERRORS | {"200"}),
    "ingestOrders": ("post", "/api/data/ingest_orders", _POST_ERRORS | {"200", "403"}),
    "ingestInteractions": ("post", "/api/data/ingest_interactions", _POST_ERRORS | {"200", "403"}),
    "getIndustryBenchmarks": (
        "get",
        "/api/insights/benchmarks/{industry}",
        _GET_ERRORS | {"200", "404"},
    ),
    "getMyPosition": ("get", "/api/insights/my-position", _GET_ERRORS | {"200"}),
}

FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def is_date_time(value: object) -> bool:
    """RFC 3339 date-time: a date, a 'T', a time and an explicit offset (or Z)."""
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value)
    return "T" in value.upper() and parsed.tzinfo is not None


@cache
def load_spec() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@cache
def registry() -> Registry:
    resource = Resource.from_contents(load_spec(), default_specification=DRAFT202012)
    return Registry().with_resource(SPEC_URI, resource)


def pointer(*parts: str) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow local `$ref`s (#/...) until reaching a non-reference object."""
    while "$ref" in node:
        node_any: Any = load_spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            node_any = node_any[part.replace("~1", "/").replace("~0", "~")]
        node = node_any
    return node


def validator_at(schema_pointer: str) -> Draft202012Validator:
    schema = {"$ref": f"{SPEC_URI}#{schema_pointer}"}
    return Draft202012Validator(schema, registry=registry(), format_checker=FORMATS)


def operations() -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    for path, item in load_spec()["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield item[method]["operationId"], path, method, item[method]


def media_examples(media: dict[str, Any]) -> list[tuple[str, Any]]:
    found = [("example", media["example"])] if "example" in media else []
    found += [(name, resolve(ex)["value"]) for name, ex in media.get("examples", {}).items()]
    return found


def example_cases() -> Iterator[Any]:
    """One case per example: inline media of operations, then shared component responses."""
    media_type = "application/json"
    for op_id, path, method, op in operations():
        if "requestBody" in op:
            media = op["requestBody"]["content"][media_type]
            base = pointer("paths", path, method, "requestBody", "content", media_type)
            for name, value in media_examples(media):
                yield pytest.param(base + "/schema", value, id=f"{op_id}-request-{name}")
        for status, response in op["responses"].items():
            if "$ref" in response:
                continue  # a shared component response, checked once below
            base = pointer("paths", path, method, "responses", status, "content", media_type)
            for name, value in media_examples(response["content"][media_type]):
                yield pytest.param(base + "/schema", value, id=f"{op_id}-{status}-{name}")
    for resp_name, response in load_spec()["components"]["responses"].items():
        base = pointer("components", "responses", resp_name, "content", media_type)
        for name, value in media_examples(response["content"][media_type]):
            yield pytest.param(base + "/schema", value, id=f"{resp_name}-{name}")
            if "x-details-schema" in response:
                details_ptr = response["x-details-schema"].removeprefix("#")
                yield pytest.param(
                    details_ptr, value["error"]["details"], id=f"{resp_name}-{name}-details"
                )


def test_spec_is_valid_openapi_31() -> None:
    spec = load_spec()
    assert spec["openapi"] == "3.1.0"
    validate(spec)


@pytest.mark.parametrize(("schema_pointer", "example"), list(example_cases()))
def test_example_matches_schema(schema_pointer: str, example: Any) -> None:
    errors = [e.message for e in validator_at(schema_pointer).iter_errors(example)]
    assert errors == []


def test_every_operation_has_request_and_success_examples() -> None:
    for op_id, _, method, op in operations():
        if method == "post":
            assert media_examples(op["requestBody"]["content"]["application/json"]), op_id
        success = resolve(op["responses"]["200"])["content"]["application/json"]
        assert media_examples(success), op_id


def test_example_check_rejects_broken_examples() -> None:
    analyze = load_spec()["paths"]["/api/intelligence/analyze"]["post"]
    base = pointer("paths", "/api/intelligence/analyze", "post")
    response = copy.deepcopy(
        media_examples(analyze["responses"]["200"]["content"]["application/json"])[0][1]
    )
    response["predictions"]["churn_risk"] = 1.5
    assert not validator_at(base + "/responses/200/content/application~1json/schema").is_valid(
        response
    )
    request_validator = validator_at(base + "/requestBody/content/application~1json/schema")
    assert not request_validator.is_valid({"context": {}})
    bad_date = {
        "customer_id": "c1",
        "context": {"interactions": [{"type": "support_ticket", "timestamp": "15/01/2024"}]},
    }
    assert not request_validator.is_valid(bad_date)
    assert not validator_at("/components/schemas/Timestamp").is_valid("2024-01-15T10:30:00")


def test_operations_paths_and_responses_are_exactly_the_documented_ones() -> None:
    found = {
        op_id: (method, path, set(op["responses"])) for op_id, path, method, op in operations()
    }
    assert found == EXPECTED_OPERATIONS
    assert not [path for path in load_spec()["paths"] if path.startswith("/_sandbox")]


def test_every_error_response_uses_the_shared_error_schema() -> None:
    for op_id, _, _, op in operations():
        for status, response in op["responses"].items():
            if int(status) >= 400:
                schema = resolve(response)["content"]["application/json"]["schema"]
                assert schema == ERROR_REF, f"{op_id} {status}"


def required_headers(response: dict[str, Any]) -> set[str]:
    headers = resolve(response).get("headers", {})
    return {name for name, header in headers.items() if resolve(header).get("required")}


def test_rate_limit_and_retry_headers() -> None:
    for op_id, _, _, op in operations():
        responses = op["responses"]
        assert required_headers(responses["200"]) == set(RATE_LIMIT_HEADERS), op_id
        assert required_headers(responses["429"]) == {*RATE_LIMIT_HEADERS, "Retry-After"}, op_id
        assert required_headers(responses["503"]) == {"Retry-After"}, op_id
        assert not required_headers(responses["401"]), op_id


def test_no_schema_forbids_unknown_fields() -> None:
    assert "additionalProperties: false" not in SPEC_PATH.read_text(encoding="utf-8")


def test_the_contract_reads_the_same_with_libyaml_and_pure_python() -> None:
    from sandbox.resources import contract_path
    from sandbox.spec import load_contract

    pure = yaml.safe_load(contract_path().read_text(encoding="utf-8"))
    assert load_contract().document == pure
