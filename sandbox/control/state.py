"""Control endpoints for state: clock, reset, export/import, journal, violations, coverage."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from sandbox.api.pipeline import json_response, parse_json_body
from sandbox.clock import parse_duration, parse_timestamp
from sandbox.control import blueprint
from sandbox.errors import ValidationFailed

_REF = "urn:quimbi:openapi#/components/schemas/"
CLOCK_SCHEMA = {
    "type": "object",
    "properties": {
        "now": {"type": "string", "format": "date-time"},
        "advance": {"type": "string", "pattern": r"^\s*-?\d+\s*[smhdw]\s*$"},
        "reset": {"const": True},
    },
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": False,
}
STATE_SCHEMA = {
    "type": "object",
    "required": ["tenants"],
    "properties": {
        "format": {"const": "quimbi-sandbox-state/1"},
        "tenants": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "orders": {"type": "array", "items": {"$ref": _REF + "Order"}},
                    "interactions": {"type": "array", "items": {"$ref": _REF + "Interaction"}},
                },
                "additionalProperties": False,
            },
        },
        "clock": {
            "type": "object",
            "properties": {
                "frozen_at": {"type": ["string", "null"], "format": "date-time"},
                "anchor": {"type": ["string", "null"], "format": "date-time"},
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}


def _sandbox():
    return current_app.extensions["quimbi"]


def validated_body(schema: dict[str, Any]) -> Any:
    sandbox = _sandbox()
    body = parse_json_body()
    problems = sandbox.contract.problems(sandbox.contract.validator_for(schema), body)
    if problems:
        raise ValidationFailed([p.as_dict() for p in problems])
    return body


def _query_timestamp(name: str):
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        return parse_timestamp(raw)
    except ValueError:
        raise ValidationFailed(
            [{"path": f"query:{name}", "message": f"{raw!r} is not an RFC 3339 time"}]
        ) from None


@blueprint.get("/clock")
def get_clock():
    return json_response(_sandbox().platform.clock.describe())


@blueprint.post("/clock")
def move_clock():
    body = validated_body(CLOCK_SCHEMA)
    clock = _sandbox().platform.clock
    if "now" in body:
        clock.set(parse_timestamp(body["now"]))
    elif "advance" in body:
        clock.advance(parse_duration(body["advance"]))
    else:
        clock.reset()
    return json_response(clock.describe())


@blueprint.post("/reset")
def reset():
    tenant = request.args.get("tenant")
    _sandbox().reset(tenant)
    return json_response({"reset": tenant or "all"})


@blueprint.get("/state")
def export_state():
    return json_response(_sandbox().platform.export_state(request.args.get("tenant")))


@blueprint.put("/state")
def import_state():
    body = validated_body(STATE_SCHEMA)
    counts = _sandbox().platform.import_state(body, request.args.get("tenant"))
    return json_response({"imported": counts})


def _journal(violations_only: bool):
    side = request.args.get("side")
    if side is not None and side not in ("request", "response"):
        raise ValidationFailed(
            [{"path": "query:side", "message": f"must be request or response, not {side!r}"}]
        )
    entries = _sandbox().journal.entries(
        tenant=request.args.get("tenant"),
        since=_query_timestamp("since"),
        violations_only=violations_only,
        side=side,
    )
    return json_response({"count": len(entries), "requests": entries})


@blueprint.get("/requests")
def requests_journal():
    return _journal(violations_only=False)


@blueprint.get("/violations")
def violations():
    return _journal(violations_only=True)


@blueprint.get("/coverage")
def coverage():
    sandbox = _sandbox()
    raw = request.args.get("operations")
    selected = [name.strip() for name in raw.split(",") if name.strip()] if raw else None
    unknown = sorted(set(selected or ()) - set(sandbox.coverage.documented))
    if unknown:
        raise ValidationFailed(
            [{"path": "query:operations", "message": f"unknown operation ids: {unknown}"}]
        )
    return json_response(sandbox.coverage.report(request.args.get("tenant"), selected))
