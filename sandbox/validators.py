"""The contract's two kinds of validators, and the formats both check.

``FastValidator``: compiled by ``jsonschema_rs``, answers only "valid?", in microseconds.
``PythonValidators``: pure-Python ``jsonschema`` validators, which name every problem;
made on first use, since importing ``jsonschema`` (and ``referencing``) alone cost
40-60 ms of the sandbox's start-up, and a server that only sees valid bodies never
needs one. ``sandbox.spec`` decides which asks when. No Flask here.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jsonschema_rs

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, FormatChecker
    from referencing import Registry

# Where the contract sits in both kinds of registry.
SPEC_URI = "urn:quimbi:openapi"

# RFC 3339, which is what OpenAPI's `date-time` means; fromisoformat alone also takes
# dates without times and timestamps without an offset, which the contract does not.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        raise ValueError("not an RFC 3339 date-time (e.g. 2024-01-15T10:30:00Z)")
    # Python's parser takes at most 6 fractional digits; nanoseconds are still valid.
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", value.upper())
    datetime.fromisoformat(trimmed)
    return True


def _is_date(value: object) -> bool:
    if isinstance(value, str):
        date.fromisoformat(value)
    return True


# The only formats checked (both validators): each raises ValueError saying what is wrong.
FORMAT_CHECKS: dict[str, Callable[[object], bool]] = {
    "date-time": _is_date_time,
    "date": _is_date,
}


@functools.cache
def format_checker() -> FormatChecker:
    """``FORMAT_CHECKS`` as the Python validator's format checker."""
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())
    for name, check in FORMAT_CHECKS.items():
        checker.checks(name, raises=ValueError)(check)
    return checker


def _format_predicate(name: str):
    """The Python format check ``name`` as the bool predicate ``jsonschema_rs`` calls."""
    check = FORMAT_CHECKS[name]

    def holds(value: str) -> bool:
        try:
            return bool(check(value))
        except ValueError:
            return False

    return holds


def document_formats(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(document_formats(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {node["format"]} if isinstance(node.get("format"), str) else set()
    for value in node.values():
        found |= document_formats(value)
    return found


class FastValidator:
    """``is_valid`` only, compiled by ``jsonschema_rs``; checks exactly the formats the
    Python validator checks (``date-time``, ``date``) and treats every other as a note."""

    def __init__(self, pointer: str, registry: jsonschema_rs.Registry, formats: set[str]):
        checked = {name: _format_predicate(name) for name in FORMAT_CHECKS}
        ignored = {name: _accept_any for name in formats - set(checked)}
        self._validator = jsonschema_rs.Draft202012Validator(
            # Percent-encoded, as a URI fragment must be ({industry} in a path, say).
            {"$ref": f"{SPEC_URI}#{quote(pointer, safe='/~')}"},
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


class PythonValidators:
    """The contract's pure-Python validators, each made on first use and then kept.

    One per (schema pointer, strictness), over one registry per document (the contract,
    and its copy that forbids unknown properties); built under a lock, so a threaded
    server makes each once.
    """

    def __init__(self, document: dict[str, Any], strict_document: dict[str, Any]) -> None:
        self._documents = {False: document, True: strict_document}
        self._registries: dict[bool, Registry] = {}
        self._made: dict[tuple[str, bool], Draft202012Validator] = {}
        self._lock = threading.Lock()

    def _registry(self, strict: bool) -> Registry:
        """Call under the lock."""
        found = self._registries.get(strict)
        if found is None:
            from referencing import Registry, Resource
            from referencing.jsonschema import DRAFT202012

            resource = Resource.from_contents(
                self._documents[strict], default_specification=DRAFT202012
            )
            found = self._registries[strict] = Registry().with_resource(SPEC_URI, resource)
        return found

    def at(self, pointer: str, strict: bool = False) -> Draft202012Validator:
        """The validator of the schema at ``pointer`` in the (strict) document."""
        found = self._made.get((pointer, strict))
        if found is None:
            with self._lock:
                found = self._made.get((pointer, strict))
                if found is None:
                    from jsonschema import Draft202012Validator

                    found = self._made[(pointer, strict)] = Draft202012Validator(
                        {"$ref": f"{SPEC_URI}#{pointer}"},
                        registry=self._registry(strict),
                        format_checker=format_checker(),
                    )
        return found

    def for_schema(self, schema: dict[str, Any]) -> Draft202012Validator:
        from jsonschema import Draft202012Validator

        with self._lock:
            registry = self._registry(False)
        return Draft202012Validator(schema, registry=registry, format_checker=format_checker())


class ResponseValidators(Mapping[str, "Draft202012Validator"]):
    """An operation's response validators by status key, each made when first asked for."""

    def __init__(self, python: PythonValidators, pointers: dict[str, str]) -> None:
        self._python = python
        self._pointers = pointers

    def __getitem__(self, key: str) -> Draft202012Validator:
        return self._python.at(self._pointers[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._pointers)

    def __len__(self) -> int:
        return len(self._pointers)
