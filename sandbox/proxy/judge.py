"""The response side of the contract: is the upstream's answer one openapi.yaml documents?

Checked per answer: the status is documented for the operation; a JSON answer says
``application/json``, parses, and matches the schema for that status; every header the
answer documents as required is there, and every documented header that is there has a
value of its schema; an error envelope's code is one the status documents (the codes in
backticks in the response's description and its examples). Problems use the journal's
shape (JSON pointer or ``header:<name>``, message). Never raises on what the upstream
sends: anything unreadable is itself a problem. No Flask.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator

from sandbox.spec import Contract

_CODE = re.compile(r"`([A-Z][A-Z0-9_]+)`")
_HTTP_METHODS = ("get", "put", "post", "delete", "patch")
# The body's verdict depends on nothing but these bytes and what frames them, and
# upstreams answer the same bytes again and again (a customer asked about twice, the same
# error): kept for this many recent answers of up to this size.
_MEMO_ENTRIES = 512
_MEMO_BODY_BYTES = 64 * 1024
# A header schema of only these keys is checked without a validator (_Header.check).
_BOUNDED_INTEGER = frozenset({"type", "minimum", "maximum", "description"})


class ResponseJudge:
    """One per contract: the documented answers of each operation, resolved once."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self._bodies: dict[tuple[Any, ...], tuple[dict[str, str], ...]] = {}
        # (operation id, status) -> the documented answer's key, None for undocumented.
        self._keys: dict[tuple[str, int], str | None] = {}
        # operation id -> status key ("200", "4XX", "default") -> (JSON?, codes, headers)
        self.answers: dict[str, dict[str, tuple[bool, frozenset[str], list[_Header]]]] = {}
        for item in contract.document.get("paths", {}).values():
            for method in _HTTP_METHODS:
                spec_op = item.get(method)
                if spec_op is None:
                    continue
                documented = {}
                for status, response in spec_op.get("responses", {}).items():
                    if "$ref" in response:
                        response = contract.resolve(response["$ref"])
                    documented[str(status)] = (
                        "application/json" in response.get("content", {}),
                        _codes(response),
                        [
                            _Header(name, contract.resolve(h["$ref"]) if "$ref" in h else h)
                            for name, h in (response.get("headers") or {}).items()
                        ],
                    )
                self.answers[spec_op["operationId"]] = documented

    def judge(
        self,
        operation_id: str,
        status: int,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        head: bool = False,
    ) -> list[dict[str, str]]:
        """The answer's problems; ``head``: a HEAD answer, which has GET's headers and no
        body to judge."""
        documented = self.answers[operation_id]
        key = self._keys.get((operation_id, status), "")
        if key == "":
            key = self._keys[(operation_id, status)] = next(
                (k for k in (str(status), f"{str(status)[0]}XX", "default") if k in documented),
                None,
            )
        if key is None:
            listed = ", ".join(sorted(documented))
            return [
                {
                    "path": "status",
                    "message": f"{status} is not an answer {operation_id} documents ({listed})",
                }
            ]
        is_json, codes, documented_headers = documented[key]
        named = {}
        for name, value in headers:
            named.setdefault(name.lower(), value)
        problems = [p for h in documented_headers if (p := h.check(named)) is not None]
        if not is_json or head:
            return problems
        content_type = named.get("content-type", "")
        encoding = named.get("content-encoding")
        memo_key = (operation_id, status, content_type, encoding, body)
        found = self._bodies.get(memo_key)
        if found is None:
            found = tuple(
                self._body_problems(operation_id, status, codes, content_type, encoding, body)
            )
            if len(body) <= _MEMO_BODY_BYTES:
                if len(self._bodies) >= _MEMO_ENTRIES:
                    del self._bodies[next(iter(self._bodies))]  # the oldest
                self._bodies[memo_key] = found
        return problems + [dict(p) for p in found]

    def _body_problems(
        self,
        operation_id: str,
        status: int,
        codes: frozenset[str],
        content_type: str,
        encoding: str | None,
        body: bytes,
    ) -> list[dict[str, str]]:
        if content_type.partition(";")[0].strip().lower() != "application/json":
            return [
                {
                    "path": "header:Content-Type",
                    "message": f"{content_type or 'absent'}; documented: application/json",
                }
            ]
        try:
            document = json.loads(_decoded(body, encoding))
        except (ValueError, UnicodeDecodeError, RecursionError, zlib.error) as exc:
            return [{"path": "", "message": f"body is not JSON: {str(exc)[:160]}"}]
        problems = [
            p.as_dict() for p in self.contract.validate_response(operation_id, status, document)
        ]
        code = _error_code(document) if status >= 400 else None
        if code is not None and codes and code not in codes:
            listed = ", ".join(sorted(codes))
            problems.append(
                {
                    "path": "/error/code",
                    "message": f"{code} is not a code {status} documents ({listed})",
                }
            )
        return problems

    @staticmethod
    def error_code(headers: Iterable[tuple[str, str]], body: bytes) -> str | None:
        """The code of an error envelope, if the body is one."""
        named = {name.lower(): value for name, value in headers}
        try:
            return _error_code(json.loads(_decoded(body, named.get("content-encoding"))))
        except (ValueError, UnicodeDecodeError, RecursionError, zlib.error):
            return None

    def is_real_answer(
        self, operation_id: str, status: int, headers: Iterable[tuple[str, str]], body: bytes
    ) -> bool:
        """Whether a 404/405/501 is the operation's own answer (404 CUSTOMER_NOT_FOUND),
        not an upstream that lacks the operation: the envelope with a code the status
        documents for it, other than ENDPOINT_NOT_FOUND."""
        documented = self.answers[operation_id].get(str(status))
        if documented is None:
            return False
        code = self.error_code(headers, body)
        return code is not None and code != "ENDPOINT_NOT_FOUND" and code in documented[1]


class _Header:
    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        self.name = name
        self.key = name.lower()
        self.where = f"header:{name}"
        self.required = bool(spec.get("required"))
        self.schema = schema = spec.get("schema") or {}
        self.integer = schema.get("type") == "integer"
        # The contract's headers are integers with bounds: checked here in Python, a
        # tenth of the cost of a validator call on every answer.
        self.bounds = (
            (schema.get("minimum"), schema.get("maximum"))
            if self.integer and set(schema) <= _BOUNDED_INTEGER
            else None
        )
        # Compiled for any other "valid?"; the Python one only explains a failure.
        self.fast = jsonschema_rs.Draft202012Validator(schema)
        self.validator = Draft202012Validator(schema)

    def check(self, named: dict[str, str]) -> dict[str, str] | None:
        value = named.get(self.key)
        if value is None:
            return (
                {"path": self.where, "message": "missing; documented as required"}
                if self.required
                else None
            )
        instance: Any = value
        if self.integer:
            text = value.strip()
            digits = text[1:] if text.startswith("-") else text
            if not (digits.isascii() and digits.isdigit()):
                return {"path": self.where, "message": f"{value!r} is not an integer"}
            instance = int(text)
            if self.bounds is not None:
                low, high = self.bounds
                if (low is None or instance >= low) and (high is None or instance <= high):
                    return None
        if self.fast.is_valid(instance):
            return None
        errors = list(self.validator.iter_errors(instance))
        if errors:
            return {"path": self.where, "message": f"{value!r}: {errors[0].message}"}
        return None


def _codes(response: dict[str, Any]) -> frozenset[str]:
    found = set(_CODE.findall(response.get("description") or ""))
    examples = ((response.get("content") or {}).get("application/json") or {}).get("examples")
    for example in (examples or {}).values():
        code = _error_code(example.get("value"))
        if code is not None:
            found.add(code)
    return frozenset(found)


def _error_code(document: Any) -> str | None:
    error = document.get("error") if isinstance(document, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def _decoded(body: bytes, encoding: str | None) -> str:
    """The body as text: the proxy passes a compressed answer on as it came, but judges
    what it says."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "gzip":
        body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        body = zlib.decompress(body)
    elif encoding != "identity":
        raise ValueError(f"Content-Encoding {encoding} is not one the proxy reads")
    return body.decode("utf-8")
