"""The contract: ``openapi.yaml`` loaded and compiled once, then only looked up.

Owns request and response validation against the spec. Must not import Flask: the
contract kit and the tests use it without a server.

Request bodies are checked twice over, for speed: a compiled ``jsonschema_rs`` validator
answers "valid?" in microseconds, and only a body it rejects goes through the pure-Python
``jsonschema`` validator, which names every problem (path and message) the way the error
envelope reports them. The Python validator stays the judge: the fast one only ever
short-cuts a body that both accept, since it checks the same formats and is never more
lenient (where it is stricter, the Python validator's empty problem list wins).
Both kinds live in ``sandbox.validators``; the Python ones are made on first use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema_rs

from sandbox.resources import contract_path, load_yaml
from sandbox.validators import (
    SPEC_URI,
    FastValidator,
    PythonValidators,
    ResponseValidators,
    document_formats,
)

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

_HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_MAX_MESSAGE = 240
# On a request property with a `default` the API reference does not give (the sandbox
# chose it): leaving the property out is accepted, and the journal warns about it.
WARN_IF_OMITTED = "x-sandbox-warn-if-omitted"


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
    python: PythonValidators = field(repr=False, compare=False)
    # Where the request body's schema is (None: the operation takes no body).
    request_pointer: str | None = None
    fast_request_validator: FastValidator | None = None
    fast_strict_request_validator: FastValidator | None = None
    # Every request property with a `default`, through nested objects.
    request_defaults: tuple[RequestDefault, ...] = ()
    # Where each documented JSON response's schema is, by status key (200, 4XX, default).
    response_pointers: dict[str, str] = field(default_factory=dict)

    @property
    def request_validator(self) -> Draft202012Validator | None:
        if self.request_pointer is None:
            return None
        return self.python.at(self.request_pointer)

    @property
    def strict_request_validator(self) -> Draft202012Validator | None:
        """Like ``request_validator``, but objects with declared properties take no others."""
        if self.request_pointer is None:
            return None
        return self.python.at(self.request_pointer, strict=True)

    @property
    def response_validators(self) -> Mapping[str, Draft202012Validator]:
        return ResponseValidators(self.python, self.response_pointers)

    def response_key(self, status: int) -> str | None:
        """Which documented response a status gets: its own, its class (4XX), default."""
        for key in (str(status), f"{str(status)[0]}XX", "default"):
            if key in self.response_pointers:
                return key
        return None

    def response_validator(self, status: int) -> Draft202012Validator | None:
        key = self.response_key(status)
        return None if key is None else self.python.at(self.response_pointers[key])


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
    """The parsed spec with one compiled validator per request schema (the Python ones
    and the response validators made on first use)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        strict_document = _forbid_unknown_properties(document)
        python = self._python = PythonValidators(document, strict_document)
        formats = document_formats(document)
        fast_registry = self._fast_registry = jsonschema_rs.Registry([(SPEC_URI, document)])
        self._formats = formats
        # Compiled on first use: only a proxy checks answers on a hot path.
        self._fast_response_validators: dict[tuple[str, str], FastValidator] = {}
        fast_strict_registry = jsonschema_rs.Registry([(SPEC_URI, strict_document)])
        self.operations: dict[str, Operation] = {}
        for path, item in document.get("paths", {}).items():
            for method in _HTTP_METHODS:
                spec_op = item.get(method)
                if spec_op is None:
                    continue
                op_id = spec_op["operationId"]
                pointer = json_pointer(["paths", path, method])
                operation = Operation(op_id, method.upper(), path, python)
                if "requestBody" in spec_op:
                    schema_ref = f"{pointer}/requestBody/content/application~1json/schema"
                    operation.request_pointer = schema_ref
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
                        operation.response_pointers[str(status)] = self_ref
                self.operations[op_id] = operation

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
        return self._python.for_schema(schema)

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
        if operation.request_pointer is None:
            return []
        fast = (
            operation.fast_strict_request_validator if strict else operation.fast_request_validator
        )
        if fast is not None and fast.is_valid(body):
            return []
        validator = operation.python.at(operation.request_pointer, strict=strict)
        return _problems(validator, body)

    def unknown_request_fields(self, operation_id: str, body: Any) -> list[Problem]:
        """Fields the contract does not name: tolerated, but worth telling a client about."""
        operation = self.operations[operation_id]
        if operation.request_pointer is None:
            return []
        fast = operation.fast_strict_request_validator
        if fast is not None and fast.is_valid(body):
            return []
        return [
            problem
            for problem in _problems(operation.python.at(operation.request_pointer, True), body)
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
        return _problems(operation.python.at(operation.response_pointers[key]), body)


def load_contract(path: Path | None = None) -> Contract:
    return Contract(load_yaml(Path(path or contract_path()).read_text(encoding="utf-8")))
