"""Control endpoints for faults: runtime fault rules and the magic-value catalogue.

Thin: fault rules are validated and kept by ``sandbox.faults``; this only speaks HTTP.
"""

from __future__ import annotations

from flask import current_app

from sandbox.api.faulting import (
    CASE_HEADER,
    FAULT_HEADER,
    INJECTED_HEADER,
    LATENCY_HEADER,
    LATENCY_INJECTED_HEADER,
    RESPONSE_HEADER,
)
from sandbox.api.pipeline import json_response, parse_json_body
from sandbox.control import blueprint
from sandbox.errors import FaultRuleNotFound, ValidationFailed
from sandbox.fault_rules import FAULTS, FaultRuleError, parse_rule_documents

HEADERS = [
    {
        "name": FAULT_HEADER,
        "in": "request",
        "values": list(FAULTS),
        "description": "Inject this fault into this one request: the documented error "
        "answer for a status, or reset (connection dropped), malformed (200 with "
        "truncated JSON), hang (connection held, then closed).",
    },
    {
        "name": LATENCY_HEADER,
        "in": "request",
        "values": ["<ms>", "<min>-<max>", "p50=<ms>,p99=<ms>"],
        "description": "Delay this one answer (capped by --hang-cap-seconds).",
    },
    {
        "name": RESPONSE_HEADER,
        "in": "request",
        "values": ["generated", "generated; case=<n>", "generated; status=<status>"],
        "description": "Answer this one request with a case generated from openapi.yaml "
        "instead of the persona: the operation's next case, or case n; status restricts "
        "it to one documented status.",
    },
    {
        "name": CASE_HEADER,
        "in": "response",
        "values": ["seed=<n>; operation=<id>; case=<n>[; status=<status>]"],
        "description": "On every generated answer: the case, to replay it exactly.",
    },
    {
        "name": INJECTED_HEADER,
        "in": "response",
        "values": ["<fault>; source=<header|rule:ID|customer:ID|key>"],
        "description": "On every answer the sandbox faked: what it injected and why.",
    },
    {
        "name": LATENCY_INJECTED_HEADER,
        "in": "response",
        "values": ["<ms>"],
        "description": "On every answer the sandbox delayed: by how much.",
    },
]


def _sandbox():
    return current_app.extensions["quimbi"]


@blueprint.post("/faults")
def add_faults():
    body = parse_json_body()
    # One rule, a list of rules, or {"rules": [...]} (the --faults file format).
    single = isinstance(body, dict) and set(body) != {"rules"}
    try:
        rules = parse_rule_documents([body] if single else body)
    except FaultRuleError as exc:
        errors = exc.errors
        if single:  # point into the rule that was sent, not into our one-item list
            errors = [{**e, "path": e["path"].removeprefix("/0")} for e in errors]
        raise ValidationFailed(errors) from None
    return json_response({"rules": _sandbox().faults.add_rules(rules)}, 201)


@blueprint.get("/faults")
def list_faults():
    return json_response({"rules": _sandbox().faults.list_rules()})


@blueprint.delete("/faults")
def clear_faults():
    return json_response({"deleted": _sandbox().faults.clear()})


@blueprint.delete("/faults/<path:rule_id>")
def delete_fault(rule_id: str):
    if not _sandbox().faults.remove_rule(rule_id):
        raise FaultRuleNotFound(rule_id)
    return json_response({"deleted": 1})


@blueprint.get("/magic")
def magic():
    sandbox = _sandbox()
    fault_customers = sandbox.faults.magic
    customers = []
    for customer_id, customer in sandbox.platform.model.magic.items():
        entry = {"customer_id": customer_id, "description": customer.description}
        behaviour = fault_customers.get(customer_id)
        if behaviour is not None:
            entry["fault"] = behaviour.fault
            entry["retry_after"] = behaviour.retry_after
            entry["first_calls"] = behaviour.first_calls
            entry["latency"] = behaviour.latency.text if behaviour.latency else None
        customers.append(entry)
    keys = [
        {
            "key": key.key,
            "tenant": key.tenant,
            "permissions": sorted(key.permissions),
            "status": key.status,
            "rate_limited": key.rate_limited,
            "description": key.description,
        }
        for key in sandbox.keyring
    ]
    return json_response({"customers": customers, "keys": keys, "headers": HEADERS})
