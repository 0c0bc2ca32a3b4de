"""Fault rules as documents: the JSON Schema, validation, and loading them from files.

Owns what a valid rule (and a magic fault customer) looks like; ``sandbox.faults``
decides what they do to a request. Used by ``--faults FILE`` and ``POST /_sandbox/faults``;
problems come back as {path (JSON pointer), message}. No Flask here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sandbox.latency import LatencyProfile, LatencySyntaxError, parse_latency
from sandbox.resources import load_yaml
from sandbox.spec import json_pointer

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

STATUS_FAULTS = ("401", "403", "404", "429", "500", "503")
NETWORK_FAULTS = ("reset", "malformed", "hang")
FAULTS = STATUS_FAULTS + NETWORK_FAULTS
RETRY_AFTER_FAULTS = ("429", "503")
GENERATED = "generated"
# An answer given in full (what the kit's respond_with sends): served as it is.
GIVEN_ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["status", "body"],
    "properties": {
        "status": {"type": "integer", "minimum": 100, "maximum": 599},
        "headers": {
            "type": "object",
            "additionalProperties": {"type": "string", "pattern": "^[\\t\\x20-\\x7e]*$"},
            "propertyNames": {"pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"},
        },
        "body": True,
    },
}

RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"},
        "description": {"type": "string"},
        "match": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "method": {"type": "string", "pattern": "^[A-Za-z]{3,7}$"},
                "path": {"type": "string", "minLength": 1},
                "customer_id": {"type": "string", "minLength": 1},
                "key": {"type": "string", "minLength": 1},
                "tenant": {"type": "string", "minLength": 1},
            },
        },
        "fault": {"enum": [*FAULTS, *(int(s) for s in STATUS_FAULTS)]},
        "code": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]{0,63}$"},
        "message": {"type": "string", "minLength": 1, "maxLength": 500},
        "retry_after": {"type": "integer", "minimum": 1, "maximum": 86400},
        "hang_seconds": {"type": "number", "exclusiveMinimum": 0},
        "latency": {"type": ["number", "string"]},
        "times": {"type": "integer", "minimum": 1},
        "probability": {"type": "number", "minimum": 0, "maximum": 1},
        "seed": {"type": "integer"},
        "respond": {"anyOf": [{"const": GENERATED}, GIVEN_ANSWER_SCHEMA]},
        "case": {"type": "integer", "minimum": 0},
        "status": {"type": "integer", "minimum": 100, "maximum": 599},
    },
}


class FaultRuleError(ValueError):
    """Rules that can't be used; ``errors`` lists each problem as {path, message}."""

    def __init__(self, errors: list[dict[str, str]], source: str = "") -> None:
        self.errors = errors
        first = errors[0]
        where = f"{source}: " if source else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        at = f"{first['path']}: " if first["path"] else ""
        super().__init__(f"{where}{at}{first['message']}{more}")


@functools.cache
def _rule_validator() -> Draft202012Validator:
    # Imported on first use: only --faults and POST /_sandbox/faults check rules.
    from jsonschema import Draft202012Validator

    return Draft202012Validator(RULE_SCHEMA)


def validate_rule(document: Any, base: str = "") -> list[dict[str, str]]:
    """Every problem with one rule document, as {path (JSON pointer), message}."""
    problems = [
        {"path": base + json_pointer(e.absolute_path), "message": e.message}
        for e in _rule_validator().iter_errors(document)
    ]
    if problems or not isinstance(document, dict):
        return sorted(problems, key=lambda p: (p["path"], p["message"]))
    fault = str(document["fault"]) if "fault" in document else None
    respond = document.get("respond")
    if fault is None and respond is None and "latency" not in document:
        problems.append(
            {"path": base, "message": "a rule needs a 'fault', a 'respond' or a 'latency'"}
        )
    if fault is not None and respond is not None:
        problems.append(
            {"path": base + "/respond", "message": "a rule has a 'fault' or a 'respond'"}
        )
    if "latency" in document:
        try:
            parse_latency(document["latency"])
        except LatencySyntaxError as exc:
            problems.append({"path": base + "/latency", "message": str(exc)})
    only_for = {
        "code": STATUS_FAULTS,
        "message": STATUS_FAULTS,
        "retry_after": RETRY_AFTER_FAULTS,
        "hang_seconds": ("hang",),
    }
    for name, faults in only_for.items():
        if name in document and fault not in faults:
            problems.append(
                {"path": f"{base}/{name}", "message": f"only for fault {' or '.join(faults)}"}
            )
    for name in ("case", "status"):
        if name in document and respond != GENERATED:
            problems.append({"path": f"{base}/{name}", "message": 'only for respond "generated"'})
    return problems


@dataclass(frozen=True)
class MagicFaultCustomer:
    """A customer id whose every request misbehaves the same way (fixtures/faults.yaml)."""

    customer_id: str
    description: str
    fault: str | None = None
    retry_after: int | None = None
    latency: LatencyProfile | None = None
    first_calls: int | None = None  # fault only on the first N calls per tenant


def load_magic_fault_customers(path: Path) -> dict[str, MagicFaultCustomer]:
    document = load_yaml(path.read_text(encoding="utf-8")) or {}
    customers = {}
    for customer_id, entry in (document.get("customers") or {}).items():
        fault = entry.get("fault")
        latency = entry.get("latency")
        customers[customer_id] = MagicFaultCustomer(
            customer_id,
            entry.get("description", ""),
            str(fault) if fault is not None else None,
            entry.get("retry_after"),
            parse_latency(latency) if latency is not None else None,
            entry.get("first_calls"),
        )
    return customers


def parse_rule_documents(document: Any, source: str = "") -> list[dict[str, Any]]:
    """A YAML/JSON rules document (a list of rules, or {rules: [...]}), validated."""
    if isinstance(document, Mapping) and set(document) == {"rules"}:
        document = document["rules"]
    if document is None:
        return []
    if not isinstance(document, list):
        raise FaultRuleError([{"path": "", "message": "expected a list of rules"}], source)
    problems = [p for i, rule in enumerate(document) for p in validate_rule(rule, f"/{i}")]
    if problems:
        raise FaultRuleError(problems, source)
    return list(document)


def load_rules_file(path: Path) -> list[dict[str, Any]]:
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise FaultRuleError([{"path": "", "message": f"cannot read: {exc}"}], str(path)) from None
    return parse_rule_documents(document, str(path))
