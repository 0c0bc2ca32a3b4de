"""The kit's pytest plugin (registered through the ``pytest11`` entry point).

Two uses:

* **Integrators** get the ``quimbi_sandbox`` fixture: a fresh sandbox in-process on a
  free port for each test, so their client can be tested against the real contract.
* **QA** can run the contract suite under pytest instead of ``quimbi-contract``:
  ``pytest --quimbi-base-url URL --quimbi-api-key KEY`` adds one test per
  (layer, check, operation), running the same registered checks the CLI runs.

Heavy imports (schemathesis, Flask) happen only when one of those is used, so the
plugin costs nothing in test runs that use neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from contract_tests.registry import Check, CheckFailure
    from contract_tests.sandbox_server import SandboxServer

_TARGET = pytest.StashKey["Target"]()
# Coverage reports of the quimbi_sandbox fixtures this session started, one per test.
_COVERAGE = pytest.StashKey[list[dict[str, Any]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("quimbi", "Quimbi contract kit")
    group.addoption("--quimbi-base-url", help="run the contract suite against this server")
    group.addoption("--quimbi-api-key", help="API key for --quimbi-base-url")
    group.addoption("--quimbi-second-api-key", help="a key of another tenant (isolation check)")
    group.addoption("--quimbi-seed", type=int, help="seed for generated data")
    group.addoption("--quimbi-max-examples", type=int, default=25, help="examples per operation")
    group.addoption("--quimbi-read-only", action="store_true", help="never call ingestion")
    group.addoption("--quimbi-select", action="append", default=[], help="layer/check/operation")
    group.addoption("--quimbi-rate", help="at most N requests per minute (N/min)")
    group.addoption(
        "--quimbi-coverage-json",
        metavar="PATH",
        help="write the quimbi_sandbox fixtures' coverage (documented answers served) as JSON",
    )


@pytest.fixture
def quimbi_sandbox(request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    """A fresh Quimbi sandbox on 127.0.0.1 for this test: ``.url``, ``.api_key``,
    ``.fault(...)``, ``.respond_with(answer)``, ``.reset()``, ``.requests()``,
    ``.assert_no_violations()``, ``.coverage()``. Its coverage joins the session's summary."""
    from contract_tests.sandbox_server import SandboxServer

    with SandboxServer() as server:
        yield server
        try:
            report = server.coverage()
        except (RuntimeError, OSError):  # the test turned the control API off, or broke it
            return
        request.config.stash.setdefault(_COVERAGE, []).append(report)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    reports = config.stash.get(_COVERAGE, None)
    if not reports:
        return
    import json
    from pathlib import Path

    from contract_tests.coverage import format_table, merge

    merged = merge(reports)
    terminalreporter.write_sep("=", "Quimbi sandbox: what your tests never tried")
    terminalreporter.write(format_table(merged))
    path = config.getoption("quimbi_coverage_json")
    if path:
        Path(path).write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
        terminalreporter.write_line(f"coverage JSON written to {path}")


class ContractFailed(Exception):
    """A contract check failed; rendered without a Python traceback."""


class ContractItem(pytest.Item):
    def __init__(self, *, check: Check, operation: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.operation = operation

    def runtest(self) -> None:
        from contract_tests import runner

        result = runner.run_one(self.config.stash[_TARGET], self.check, self.operation)
        if result.outcome == runner.SKIPPED:
            pytest.skip(result.message)
        if result.outcome == runner.INCONCLUSIVE:
            pytest.skip(
                f"inconclusive: {result.message}" + (f"; {result.curl}" if result.curl else "")
            )
        if result.outcome == runner.ERROR:
            raise RuntimeError(result.message)
        if result.failure is not None:
            raise ContractFailed(result.failure)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ContractFailed):
            failure: CheckFailure = excinfo.value.args[0]
            lines = [f"expected: {failure.expected}", f"actual:   {failure.actual}"]
            if failure.curl:
                lines.append(f"reproduce: {failure.curl}")
            return "\n".join(lines)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "quimbi-contract", None, self.name


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    base_url = config.getoption("quimbi_base_url")
    if not base_url:
        return
    api_key = config.getoption("quimbi_api_key")
    if not api_key:
        raise pytest.UsageError("--quimbi-base-url needs --quimbi-api-key")
    from contract_tests import runner
    from contract_tests.target import Options, Target

    options = Options.build(
        rate=config.getoption("quimbi_rate"),
        base_url=base_url,
        api_key=api_key,
        second_api_key=config.getoption("quimbi_second_api_key"),
        seed=config.getoption("quimbi_seed"),
        max_examples=config.getoption("quimbi_max_examples"),
        read_only=config.getoption("quimbi_read_only"),
        select=tuple(config.getoption("quimbi_select")),
    )
    config.stash[_TARGET] = Target(options)
    for check, operation in runner.selected(options):
        items.append(
            ContractItem.from_parent(
                session,
                name=f"{check.layer}/{check.name}[{operation}]",
                check=check,
                operation=operation,
            )
        )
