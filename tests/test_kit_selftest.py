"""The kit against the real sandbox, fixed seed: every check passes."""

from __future__ import annotations

from contract_tests import runner
from contract_tests.sandbox_server import SECOND_TENANT_KEY, SandboxServer
from contract_tests.target import Options

SEED = 20240115


def test_kit_passes_against_the_sandbox():
    with SandboxServer(seed=0) as sandbox:
        options = Options.build(
            base_url=sandbox.url,
            api_key=sandbox.api_key,
            second_api_key=SECOND_TENANT_KEY,
            seed=SEED,
            max_examples=10,
        )
        results, target = runner.run(options)
    failures = [
        runner.format_report([r], options, 0) for r in results if r.outcome != runner.PASSED
    ]
    assert not failures, "\n".join(failures)
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
