"""The kit against the real sandbox, fixed seed: every check passes."""

from __future__ import annotations

from contract_tests import runner
from contract_tests.sandbox_server import SECOND_TENANT_KEY, SandboxServer
from contract_tests.stateful import IngestionMachine
from contract_tests.target import Options, Target

SEED = 20240115


def _options(sandbox: SandboxServer, **overrides) -> Options:
    """Both tenants' keys, the fixed seed, and whatever the test changes."""
    values = {"second_api_key": SECOND_TENANT_KEY, "seed": SEED, **overrides}
    return Options.build(base_url=sandbox.url, api_key=sandbox.api_key, **values)


def test_kit_passes_against_the_sandbox():
    with SandboxServer(seed=0) as sandbox:
        options = _options(sandbox, max_examples=10)
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


def test_a_rerun_against_the_same_server_passes_and_makes_new_ids():
    """Two runs with one seed against one server: the second must not reuse the first's
    customer and order ids (it would meet its orders again, as re-ingestions)."""
    with SandboxServer(seed=0) as sandbox:
        options = _options(sandbox, max_examples=6, select=("stateful",))
        tokens = []
        for _ in range(2):
            results, target = runner.run(options)
            tokens.append(target.run_token)
            assert results and {r.layer for r in results} == {"stateful"}
            failures = [
                runner.format_report([r], options, 0) for r in results if r.outcome != runner.PASSED
            ]
            assert not failures, "\n".join(failures)
    assert tokens[0] != tokens[1]


def test_every_run_of_the_stateful_machine_makes_its_own_ids():
    """Hypothesis makes a machine per example; a freed machine's address is often the
    next one's, so the ids must not come from the address."""
    target = Target(Options.build(base_url="http://127.0.0.1:9", api_key="k", seed=SEED))
    bound = type("Bound", (IngestionMachine,), {"target": target, "failures": {}})
    ids = set()
    for _ in range(50):
        machine = bound()
        ids.add(machine.next_id("c"))
        del machine  # its address is free for the next one
    assert len(ids) == 50 and all(i.startswith(target.run_token) for i in ids)
