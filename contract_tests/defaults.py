"""Layer 2, semantics: request properties openapi.yaml gives a `default` may be left out.

Clients copy the API reference's SDK examples, which leave such properties out (the
message call sends no `context.channel`). The contract says what the server then
assumes, so the kit checks both halves: the request is accepted, and where the answer
echoes the property (`channel`, `horizon_months`) it echoes the documented default.
Which properties have defaults is read from the contract, not listed here.
"""

from __future__ import annotations

import copy
from typing import Any

from contract_tests.registry import check
from contract_tests.semantics import expect, success_body, valid_request
from contract_tests.target import Target
from sandbox.spec import load_contract

# One request per documented default (the plan counts them from here).
DEFAULTS_PER_OPERATION = {
    operation_id: len(operation.request_defaults)
    for operation_id, operation in load_contract().operations.items()
    if operation.request_defaults
}
DEFAULTED_OPERATIONS = tuple(DEFAULTS_PER_OPERATION)


def _without(body: Any, path: tuple[str, ...]) -> Any | None:
    """``body`` less the property at ``path``; None if the body has no such property."""
    trimmed = copy.deepcopy(body)
    parent = trimmed
    for name in path[:-1]:
        parent = parent.get(name) if isinstance(parent, dict) else None
    if not isinstance(parent, dict) or path[-1] not in parent:
        return None
    del parent[path[-1]]
    return trimmed


@check("semantics", DEFAULTED_OPERATIONS)
def documented_defaults(target: Target, operation: str) -> None:
    """Leaving out a property with a documented default is accepted, and an answer that
    echoes the property carries the default."""
    method, path, body = valid_request(target, operation, "test_customer_high_ltv")
    for default in target.contract.operation(operation).request_defaults:
        where = ".".join(default.path)
        trimmed = _without(body, default.path)
        if trimmed is None:
            continue
        reply = target.call(method, path, trimmed)
        expect(
            reply.status == 200,
            f"200 for a request without {where} (documented default {default.value!r})",
            reply.status,
            reply,
        )
        answer = success_body(target, operation, reply)
        name = default.path[-1]
        if isinstance(answer, dict) and name in answer:
            expect(
                answer[name] == default.value,
                f"{name} {default.value!r} in the answer (the default for {where})",
                answer[name],
                reply,
            )
