"""schemathesis' stateful phase against a real sandbox: every link in openapi.yaml must be
followable from every answer it is documented on.

This is what `schemathesis run --phases=stateful openapi.yaml` does, run through the
same engine the CLI uses. The CLI only *reports* a link it could not resolve ("Failed
to extract data from response") and still exits 0, so the test collects those
extraction failures itself and fails on them, as on any check failure or error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import schemathesis
from schemathesis.core.transforms import UNRESOLVABLE
from schemathesis.engine import events, from_schema
from schemathesis.engine.statistic import Statistic

from sandbox.resources import contract_path
from tests.conftest import DEFAULT_KEY, ServerProcess

# Enough scenarios that the documented ingest example is sent more than once (the
# idempotent re-send that updates no profile), few enough to stay a few seconds.
MAX_EXAMPLES = 20
SEED = 1


@dataclass
class StatefulRun:
    statistic: Statistic
    errors: list[str] = field(default_factory=list)
    # link (as labelled in _documented_links) -> times followed with its body resolved
    followed: Counter[str] = field(default_factory=Counter)


def _documented_links() -> set[str]:
    """Each link as schemathesis labels a transition: source -> [status] name -> target."""
    document = schemathesis.openapi.from_path(contract_path()).raw_schema
    labels = {
        operation["operationId"]: f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    }
    return {
        f"{labels[operation['operationId']]} -> [{status}] {name} -> {labels[link['operationId']]}"
        for item in document["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict)
        for status, response in operation.get("responses", {}).items()
        for name, link in response.get("links", {}).items()
    }


def _run_stateful_phase(base_url: str) -> StatefulRun:
    config = schemathesis.Config.from_dict(
        {
            "base-url": base_url,
            "headers": {"X-API-Key": DEFAULT_KEY},
            "seed": SEED,
            # Nothing written into the checkout (crash cache, example database).
            "cache": {"enabled": False},
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "phases": {
                "examples": {"enabled": False},
                "coverage": {"enabled": False},
                "fuzzing": {"enabled": False},
                "stateful": {"enabled": True},
            },
        }
    )
    schema = schemathesis.openapi.from_path(contract_path(), config=config)
    run = StatefulRun(Statistic())
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.is_test_scenario:
            run.statistic.on_scenario_finished(event.recorder)
            for node in event.recorder.cases.values():
                transition = node.transition
                if transition is None or transition.is_inferred:
                    continue
                body = transition.request_body
                if body is not None and body.value.ok() is not UNRESOLVABLE:
                    run.followed[transition.id] += 1
        elif isinstance(event, events.NonFatalError):
            run.errors.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            run.errors.append(repr(event.exception))
    return run


@pytest.fixture(scope="module")
def stateful_run() -> Iterator[StatefulRun]:
    with ServerProcess("--seed", "7", "--rate-limit", "off") as server:
        yield _run_stateful_phase(server.url)


def test_every_link_resolves_in_every_answer(stateful_run):
    unresolved = [
        f"{failure.id}: {failure.expression} unresolved in the answer "
        f"{failure.response.status_code} {failure.response.content!r}"
        for failure in stateful_run.statistic.extraction_failures
    ]
    assert unresolved == []


def test_every_link_is_followed(stateful_run):
    # Without this, a run that never reached the links would pass the test above.
    assert set(stateful_run.followed) == _documented_links()


def test_no_check_fails_and_nothing_errors(stateful_run):
    statistic = stateful_run.statistic
    failures = [
        f"{label}: {failure.title}"
        for label, grouped in statistic.failures.items()
        for group in grouped.values()
        for failure in group.failures
    ]
    assert failures == []
    assert stateful_run.errors == []
    assert statistic.errored_cases == 0
