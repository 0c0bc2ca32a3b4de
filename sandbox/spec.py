"""The contract: ``openapi.yaml`` loaded and compiled once, then only looked up.

Owns request and response validation against the spec. Must not import Flask: the
contract kit and the tests use it without a server.

Request bodies are checked twice over, for speed: a compiled ``jsonschema_rs`` validator
answers "valid?" in microseconds, and only a body it rejects goes through the pure-Python
``jsonschema`` validator, which names every problem (path and message) the way the error
envelope reports them. The Python validator stays the judge: the fast one only ever
short-cuts a body that both accept, since it checks the same formats and is never more
lenient (where it is stricter, the Python validator's empty problem list wins).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema_rs
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from sandbox.resources import contract_path

_SPEC_URI = "urn:quimbi:openapi"
_HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_MAX_MESSAGE = 240
# On a request property with a `default` the API reference does not give (the sandbox
# chose it): leaving the property out is accepted, and the journal warns about it.
WARN_IF_OMITTED = "x-sandbox-warn-if-omitted"

# RFC 3339, which is what OpenAPI's `date-time` means; fromisoformat alone also takes
# dates without times and timestamps without an offset, which the contract does not.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
FORMAT_CHECKER = FormatChecker(formats=())


@FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        raise ValueError("not an RFC 3339 date-time (e.g. 2024-01-15T10:30:00Z)")
    # Python's parser takes at most 6 fractional digits; nanoseconds are still valid.
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", value.upper())
    datetime.fromisoformat(trimmed)
    return True


@FORMAT_CHECKER.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    if isinstance(value, str):
        date.fromisoformat(value)
    return True


def _format_predicate(name: str):
    """The Python format check ``name`` as the bool predicate ``jsonschema_rs`` calls."""
    check = FORMAT_CHECKER.checkers[name][0]

    def holds(value: str) -> bool:
        try:
            return bool(check(value))
        except ValueError:
            return False

    return holds


def _document_formats(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_document_formats(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {node["format"]} if isinstance(node.get("format"), str) else set()
    for value in node.values():
        found |= _document_formats(value)
    return found


class FastValidator:
    """``is_valid`` only, compiled by ``jsonschema_rs``; checks exactly the formats the
    Python validator checks (``date-time``, ``date``) and treats every other as a note."""

    def __init__(self, pointer: str, registry: jsonschema_rs.Registry, formats: set[str]):
        checked = {name: _format_predicate(name) for name in FORMAT_CHECKER.checkers}
        ignored = {name: _accept_any for name in formats - set(checked)}
        self._validator = jsonschema_rs.Draft202012Validator(
            # Percent-encoded, as a URI fragment must be ({industry} in a path, say).
            {"$ref": f"{_SPEC_URI}#{quote(pointer, safe='/~')}"},
            registry=registry,
            validate_formats=True,
            formats={**checked, **ignored},
        )

    def is_valid(self, instance: Any) -> bool:
        """True only when the body is certainly valid; False means "ask jsonschema"."""
        try:
            return self._validator.is_valid(instance)
        except (ValueError, OverflowError, RecursionError):
            # Lone surrogates in keys, and the like: let the Python validator decide.
            return False


def _accept_any(value: str) -> bool:
    return True


@dataclass(frozen=True)
class Problem:
    """One way a JSON document breaks its schema: where (JSON pointer) and why."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


@dataclass(frozen=True)
class RequestDefault:
    """A request property with a documented `default`; ``warn`` when the sandbox chose it."""

    path: tuple[str, ...]
    value: Any
    warn: bool

    def omitted_from(self, body: Any) -> bool:
        """Left out of an object that is there (an absent parent leaves nothing to fill)."""
        parent = body
        for name in self.path[:-1]:
            parent = parent.get(name) if isinstance(parent, dict) else None
        return isinstance(parent, dict) and self.path[-1] not in parent


@dataclass
class Operation:
    operation_id: str
    method: str
    path: str
    request_validator: Draft202012Validator | None
    response_validators: dict[str, Draft202012Validator] = field(default_factory=dict)
    strict_request_validator: Draft202012Validator | None = None
    fast_request_validator: FastValidator | None = None
    fast_strict_request_validator: FastValidator | None = None
    # Every request property with a `default`, through nested objects.
    request_defaults: tuple[RequestDefault, ...] = ()

    # Where each response schema is, for the compiled validator made on first use.
    response_pointers: dict[str, str] = field(default_factory=dict)

    def response_key(self, status: int) -> str | None:
        """Which documented response a status gets: its own, its class (4XX), default."""
        for key in (str(status), f"{str(status)[0]}XX", "default"):
            if key in self.response_validators:
                return key
        return None

    def response_validator(self, status: int) -> Draft202012Validator | None:
        key = self.response_key(status)
        return None if key is None else self.response_validators[key]


def json_pointer(parts: Any) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def _problems(validator: Draft202012Validator, instance: Any) -> list[Problem]:
    found = set()
    for error in validator.iter_errors(instance):
        path = json_pointer(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            for name in error.validator_value:
                if name not in error.instance:
                    found.add(Problem(f"{path}/{name}", f"'{name}' is a required property"))
            continue
        message = error.message
        if len(message) > _MAX_MESSAGE:
            message = message[: _MAX_MESSAGE - 3] + "..."
        found.add(Problem(path, message))
    return sorted(found, key=lambda p: (p.path, p.message))


def _forbid_unknown_properties(schema: Any) -> Any:
    """A copy of ``schema`` where objects with declared properties accept no others."""
    if isinstance(schema, list):
        return [_forbid_unknown_properties(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copied = {key: _forbid_unknown_properties(value) for key, value in schema.items()}
    if "properties" in copied and "additionalProperties" not in copied:
        copied["additionalProperties"] = False
    return copied


class Contract:
    """The parsed spec with one compiled validator per request and response schema."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        registry = self._registry = Registry().with_resource(
            _SPEC_URI, Resource.from_contents(document, default_specification=DRAFT202012)
        )
        strict_document = _forbid_unknown_properties(document)
        strict_registry = Registry().with_resource(
            _SPEC_URI,
            Resource.from_contents(strict_document, default_specification=DRAFT202012),
        )
        formats = _document_formats(document)
        fast_registry = self._fast_registry = jsonschema_rs.Registry([(_SPEC_URI, document)])
        self._formats = formats
        # Compiled on first use: only a proxy checks answers on a hot path.
        self._fast_response_validators: dict[tuple[str, str], FastValidator] = {}
        fast_strict_registry = jsonschema_rs.Registry([(_SPEC_URI, strict_document)])
        self.operations: dict[str, Operation] = {}
        for path, item in document.get("paths", {}).items():
            for method in _HTTP_METHODS:
                spec_op = item.get(method)
                if spec_op is None:
                    continue
                op_id = spec_op["operationId"]
                pointer = json_pointer(["paths", path, method])
                operation = Operation(op_id, method.upper(), path, None)
                if "requestBody" in spec_op:
                    schema_ref = f"{pointer}/requestBody/content/application~1json/schema"
                    operation.request_validator = self._validator(schema_ref, registry)
                    operation.strict_request_validator = self._validator(
                        schema_ref, strict_registry
                    )
                    operation.fast_request_validator = FastValidator(
                        schema_ref, fast_registry, formats
                    )
                    operation.fast_strict_request_validator = FastValidator(
                        schema_ref, fast_strict_registry, formats
                    )
                    schema = spec_op["requestBody"]["content"]["application/json"]["schema"]
                    operation.request_defaults = tuple(self._request_defaults(schema, ()))
                for status, response in spec_op.get("responses", {}).items():
                    if "$ref" in response:
                        ref = response["$ref"].removeprefix("#")
                        response = self.resolve(response["$ref"])
                    else:
                        ref = f"{pointer}/responses/{status}"
                    if "application/json" in response.get("content", {}):
                        self_ref = f"{ref}/content/application~1json/schema"
                        operation.response_validators[str(status)] = self._validator(
                            self_ref, registry
                        )
                        operation.response_pointers[str(status)] = self_ref
                self.operations[op_id] = operation

    @staticmethod
    def _validator(pointer: str, registry: Registry) -> Draft202012Validator:
        return Draft202012Validator(
            {"$ref": f"{_SPEC_URI}#{pointer}"},
            registry=registry,
            format_checker=FORMAT_CHECKER,
        )

    def _request_defaults(
        self, schema: Any, path: tuple[str, ...], refs: frozenset[str] = frozenset()
    ) -> list[RequestDefault]:
        """Every property with a `default` in a request schema, through nested objects."""
        ref = schema.get("$ref")
        if ref is not None:
            if ref in refs:  # a schema that contains itself
                return []
            refs, schema = refs | {ref}, self.resolve(ref)
        found = []
        for name, prop in schema.get("properties", {}).items():
            if "default" in prop:
                found.append(
                    RequestDefault((*path, name), prop["default"], bool(prop.get(WARN_IF_OMITTED)))
                )
            found.extend(self._request_defaults(prop, (*path, name), refs))
        return found

    def validator_for(self, schema: dict[str, Any]) -> Draft202012Validator:
        """A validator for a schema of our own that may $ref the contract's components
        as ``urn:quimbi:openapi#/components/schemas/<Name>``."""
        return Draft202012Validator(schema, registry=self._registry, format_checker=FORMAT_CHECKER)

    def problems(self, validator: Draft202012Validator, instance: Any) -> list[Problem]:
        return _problems(validator, instance)

    def resolve(self, ref: str) -> Any:
        node: Any = self.document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def operation(self, operation_id: str) -> Operation:
        return self.operations[operation_id]

    def validate_request(
        self, operation_id: str, body: Any, *, strict: bool = False
    ) -> list[Problem]:
        operation = self.operations[operation_id]
        if strict:
            validator, fast = (
                operation.strict_request_validator,
                operation.fast_strict_request_validator,
            )
        else:
            validator, fast = operation.request_validator, operation.fast_request_validator
        if validator is None or (fast is not None and fast.is_valid(body)):
            return []
        return _problems(validator, body)

    def unknown_request_fields(self, operation_id: str, body: Any) -> list[Problem]:
        """Fields the contract does not name: tolerated, but worth telling a client about."""
        operation = self.operations[operation_id]
        if operation.strict_request_validator is None:
            return []
        fast = operation.fast_strict_request_validator
        if fast is not None and fast.is_valid(body):
            return []
        return [
            problem
            for problem in _problems(operation.strict_request_validator, body)
            if "Additional properties are not allowed" in problem.message
        ]

    def omitted_defaults(self, operation_id: str, body: Any) -> list[Problem]:
        """Properties left out of a valid body whose default is the sandbox's choice:
        accepted, but a client author should know what the sandbox assumed."""
        found = []
        for default in self.operations[operation_id].request_defaults:
            if default.warn and default.omitted_from(body):
                found.append(
                    Problem(
                        json_pointer(default.path),
                        f"{'.'.join(default.path)} omitted; the sandbox used the documented "
                        f"default {json.dumps(default.value)}",
                    )
                )
        return found

    def validate_response(self, operation_id: str, status: int, body: Any) -> list[Problem]:
        """Like request bodies: the compiled validator says "valid?", and only a body it
        doubts goes to the Python one, which finds the problems."""
        operation = self.operations[operation_id]
        key = operation.response_key(status)
        if key is None:
            return [Problem("", f"status {status} is not documented for {operation_id}")]
        fast = self._fast_response_validators.get((operation_id, key))
        if fast is None:
            fast = self._fast_response_validators[(operation_id, key)] = FastValidator(
                operation.response_pointers[key], self._fast_registry, self._formats
            )
        if fast.is_valid(body):
            return []
        return _problems(operation.response_validators[key], body)


def load_contract(path: Path | None = None) -> Contract:
    with open(path or contract_path(), encoding="utf-8") as handle:
        # libyaml when PyYAML has it (its wheels do): the pure-Python parser took ~70 ms
        # of the sandbox's start-up on this one file.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return Contract(yaml.load(handle, Loader=loader))  # safe either way
