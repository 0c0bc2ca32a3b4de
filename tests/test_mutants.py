"""The kit proves it can fail: each broken sandbox is caught, by the check named for it."""

from __future__ import annotations

import pytest

from contract_tests import runner
from contract_tests.sandbox_server import SECOND_TENANT_KEY, SandboxServer
from contract_tests.target import Options
from tests.mutants import MUTANTS

# Small example counts keep the suite fast; the seed keeps it the same on every run.
# No pace: the mutant without X-RateLimit-* headers would be paced at the fallback 90/min.
FAST = {"seed": 7, "max_examples": 5, "rate": "0"}


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_kit_catches_the_mutant(mutant):
    with SandboxServer(app=mutant.build()) as server:
        options = Options.build(
            base_url=server.url,
            api_key=server.api_key,
            second_api_key=SECOND_TENANT_KEY if mutant.needs_second_key else None,
            **FAST,
        )
        results, _ = runner.run(options)
    failed = {r.check for r in results if r.outcome == runner.FAILED}
    crashed = [r.message for r in results if r.outcome == runner.ERROR]
    assert not crashed, crashed
    assert mutant.caught_by in failed, f"{mutant.defect}: only {sorted(failed)} failed"
    report = runner.format_report(results, options, 0)
    assert f"/ {mutant.caught_by} /" in report and "reproduce: curl" in report


def test_there_are_at_least_nine_distinct_defects():
    assert len({m.name for m in MUTANTS}) >= 9
