"""The kit against the real sandbox, fixed seed: everything passes but the pending list."""

from __future__ import annotations

from collections import defaultdict

from contract_tests import runner
from contract_tests.sandbox_server import SECOND_TENANT_KEY, SandboxServer
from contract_tests.target import Options
from tests.pending import PENDING_ON_ISSUE

SEED = 20240115


def test_kit_passes_against_the_sandbox_except_pending_checks():
    with SandboxServer(seed=0) as sandbox:
        options = Options.build(
            base_url=sandbox.url,
            api_key=sandbox.api_key,
            second_api_key=SECOND_TENANT_KEY,
            seed=SEED,
            max_examples=10,
        )
        results, target = runner.run(options)
    outcomes = defaultdict(set)
    for result in results:
        outcomes[result.check].add(result.outcome)
        outcomes[f"{result.check}:{result.operation}"].add(result.outcome)

    def pending(result: runner.Result) -> bool:
        return result.check in PENDING_ON_ISSUE or (
            f"{result.check}:{result.operation}" in PENDING_ON_ISSUE
        )

    unexpected = [
        runner.format_report([r], options, 0)
        for r in results
        if r.outcome != runner.PASSED and not pending(r)
    ]
    assert not unexpected, "\n".join(unexpected)
    # A pending check that passes means its issue landed: delete it from the list.
    for name in set(PENDING_ON_ISSUE) & set(outcomes):
        assert runner.FAILED in outcomes[name], f"{name} passes now: remove it from pending"
    # Every layer ran, and the stateful layer really wrote and read back.
    assert {r.layer for r in results} == {"schema", "semantics", "stateful"}
    assert target.session.sent > 200


def test_read_only_never_calls_ingestion():
    with SandboxServer(seed=0) as sandbox:
        options = Options.build(
            base_url=sandbox.url,
            api_key=sandbox.api_key,
            seed=SEED,
            max_examples=3,
            read_only=True,
        )
        results, target = runner.run(options)
    called = set(target.session.paths)
    assert "/api/intelligence/analyze" in called
    assert not [path for path in called if path.startswith("/api/data/")]
    assert all(r.operation not in ("ingestOrders", "ingestInteractions") for r in results)
    assert all(r.layer != "stateful" for r in results)
