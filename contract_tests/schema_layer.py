"""Layer 1, the schema: schemathesis generates requests from openapi.yaml and judges answers.

For each operation, schemathesis draws valid (positive) and invalid (negative) requests;
every answer goes through the built-in checks below, each run on its own so a failure is
attributed to exactly one check. One exploration per operation feeds all nine checks
(cached on the target), so selecting more checks costs no extra requests. The links in
openapi.yaml (ingestOrders -> analyzeCustomer) drive schemathesis' state machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import given
from hypothesis import seed as hypothesis_seed
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi import checks as openapi_checks
from schemathesis.transport.requests import REQUESTS_TRANSPORT, RequestsTransport

from contract_tests.registry import WRITE_OPERATIONS, CheckFailure, Exchange, check, describe
from contract_tests.target import Target, Throttled
from sandbox.resources import contract_path
from sandbox.spec import load_contract

# What each schemathesis check demands, for the report's "expected" line.
SCHEMATHESIS_CHECKS: dict[str, tuple[Callable[..., Any], str]] = {
    "not_a_server_error": (not_a_server_error, "no 5xx answer to any request"),
    "status_code_conformance": (
        openapi_checks.status_code_conformance,
        "a status code documented for the operation",
    ),
    "content_type_conformance": (
        openapi_checks.content_type_conformance,
        "a Content-Type documented for the status (application/json)",
    ),
    "response_schema_conformance": (
        openapi_checks.response_schema_conformance,
        "a body matching the documented schema for the status",
    ),
    "response_headers_conformance": (
        openapi_checks.response_headers_conformance,
        "the documented response headers (X-RateLimit-Limit/-Remaining/-Reset on 200)",
    ),
    "negative_data_rejection": (
        openapi_checks.negative_data_rejection,
        "a 4xx for a request that breaks the schema",
    ),
    "positive_data_acceptance": (
        openapi_checks.positive_data_acceptance,
        "a 2xx (or a documented 404) for a request that follows the schema",
    ),
    "ignored_auth": (
        openapi_checks.ignored_auth,
        "401/403 for the same request without a key or with an invalid key",
    ),
    "missing_required_header": (
        openapi_checks.missing_required_header,
        "a 4xx when a required header is left out",
    ),
}
SCHEMA_OPERATIONS = tuple(load_contract().operations)
STATEFUL_LINK = "ingestOrders -> analyzeCustomer"
_KEY_HEADER = "X-API-Key"


def load_schema() -> Any:
    # An explicit, empty config: a schemathesis.toml in the user's directory must not
    # change what the kit checks.
    return schemathesis.openapi.from_path(contract_path(), config=schemathesis.Config())


def _schema(target: Target) -> Any:
    if "schema" not in target.cache:
        schema = load_schema()
        # schemathesis sends ignored_auth's probes on a session of its own; route them
        # through the kit's, so they are paced and counted (--max-requests) like the rest.
        transport = _SessionTransport(target.session)
        schema.__class__ = type(
            "PacedSchema", (type(schema),), {"transport": property(lambda self: transport)}
        )
        target.cache["schema"] = schema
    return target.cache["schema"]


class _SessionTransport(RequestsTransport):
    def __init__(self, session: Any) -> None:
        super().__init__()
        self._copy_serializers_from(REQUESTS_TRANSPORT)
        self.session = session

    def send(self, case: Any, *, session: Any = None, **kwargs: Any) -> Any:
        return super().send(case, session=session or self.session, **kwargs)


def _to_check_failure(name: str, failure: Failure, response: Any) -> CheckFailure:
    exchange = Exchange.from_prepared(response.request, response.status_code, response.text)
    # ignored_auth fails on the request *without* the key; show that one.
    drop = (_KEY_HEADER,) if name == "ignored_auth" else ()
    actual = failure.title or type(failure).__name__
    if failure.message:
        actual = f"{actual}: {describe(failure.message.strip(), 600)}"
    return CheckFailure(
        expected=SCHEMATHESIS_CHECKS[name][1],
        actual=f"{response.status_code} - {actual}",
        exchange=exchange,
        curl=exchange.curl(drop_headers=drop),
    )


def _validate(target: Target, case: Any, response: Any, names: list[str], found: dict) -> None:
    headers = {_KEY_HEADER: target.options.api_key}
    kwargs = {"base_url": target.base_url, "headers": headers, "session": target.session}
    for name in names:
        if found.get(name) is not None:
            continue  # the first failure per check is the one reported
        if name == "ignored_auth" and found.get("_auth_probed"):
            continue  # two probe requests per call: once per operation is enough
        try:
            case.validate_response(
                response,
                checks=[SCHEMATHESIS_CHECKS[name][0]],
                headers=headers,
                transport_kwargs=kwargs,
            )
        except FailureGroup as group:
            found[name] = _to_check_failure(name, group.exceptions[0], response)
        if name == "ignored_auth" and 200 <= response.status_code < 300:
            found["_auth_probed"] = True


def explore(target: Target, operation_id: str) -> dict[str, CheckFailure | Throttled | None]:
    """Run generated requests for one operation; the first failure of each check (or,
    for the checks without one, the rate limit that stopped the exploration)."""
    cache_key = f"explore:{operation_id}"
    if cache_key in target.cache:
        return target.cache[cache_key]
    operation = _schema(target).find_operation_by_id(operation_id)
    found: dict[str, Any] = dict.fromkeys(SCHEMATHESIS_CHECKS)
    headers = {_KEY_HEADER: target.options.api_key}
    names = list(SCHEMATHESIS_CHECKS)
    try:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis_seed(target.options.seed)
            @target.hypothesis_settings()
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                response = case.call(
                    base_url=target.base_url, session=target.session, headers=headers
                )
                _validate(target, case, response, names, found)

            run()
    except Throttled as throttled:
        # What was found before the limit stopped it still counts: drift is not hidden.
        found = {name: found[name] or throttled for name in SCHEMATHESIS_CHECKS}
    found.pop("_auth_probed", None)
    target.cache[cache_key] = found
    return found


def _schema_check(name: str) -> None:
    def run(target: Target, operation: str) -> None:
        outcome = explore(target, operation)[name]
        if outcome is not None:
            raise outcome

    run.__doc__ = SCHEMATHESIS_CHECKS[name][1]
    check("schema", SCHEMA_OPERATIONS, name=name)(run)


for _name in SCHEMATHESIS_CHECKS:
    _schema_check(_name)


def _link_machine(target: Target, failures: list[CheckFailure]) -> type:
    base = _schema(target).as_state_machine()
    headers = {_KEY_HEADER: target.options.api_key}
    names = [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]

    class LinkMachine(base):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": target.base_url, "session": target.session, "headers": headers}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            found: dict[str, Any] = {}
            _validate(target, case, response, names, found)
            failures.extend(f for f in found.values() if f is not None)

    return LinkMachine


@check("stateful", (STATEFUL_LINK,), writes=True)
def stateful_links(target: Target, operation: str) -> None:
    """Sequences that follow the spec's links answer as documented at every step."""
    failures: list[CheckFailure] = []
    machine = _link_machine(target, failures)
    settings = target.hypothesis_settings(
        max_examples=max(2, target.options.max_examples // 5),
        stateful_step_count=target.options.stateful_steps,
    )
    try:
        run_state_machine_as_test(hypothesis_seed(target.options.seed)(machine), settings=settings)
    except Throttled:
        if not failures:
            raise
    if failures:
        raise failures[0]


assert set(WRITE_OPERATIONS) <= set(SCHEMA_OPERATIONS)
