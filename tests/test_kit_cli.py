"""quimbi-contract and the pytest side of the kit, end to end against in-process servers."""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from contract_tests import cli
from contract_tests.registry import REGISTRY, Exchange
from contract_tests.sandbox_server import SandboxServer, format_violation
from contract_tests.target import REMOTE_DEFAULT_RATE, Options, Pacer, is_local, parse_rate
from tests import mutants

FAST = ["--seed", "5", "--max-examples", "3"]


def test_conforming_target_exits_0_with_junit(tmp_path, capsys):
    report = tmp_path / "junit.xml"
    with SandboxServer() as server:
        code = cli.main(
            [
                "--base-url",
                server.url,
                "--api-key",
                server.api_key,
                *FAST,
                "--select",
                "not_a_server_error",
                "documented_test_customers",
                "--junit-xml",
                str(report),
            ]
        )
    out, err = capsys.readouterr()
    assert code == 0, out
    assert "[  1/" in err and "ok" in err  # progress on stderr
    assert "documented_test_customers" in out and "0 failed" in out  # summary on stdout
    suite = ET.parse(report).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 10 and suite.get("failures") == "0"
    assert ("semantics.documented_test_customers", "analyzeCustomer") in {
        (c.get("classname"), c.get("name")) for c in cases
    }


def test_broken_target_exits_1_with_expected_actual_and_curl(tmp_path, capsys):
    report = tmp_path / "junit.xml"
    with SandboxServer(app=mutants.wrong_key_403()) as server:
        code = cli.main(
            [
                "--base-url",
                server.url,
                "--api-key",
                server.api_key,
                *FAST,
                "--select",
                "unauthenticated_is_401:predictChurn",
                "--junit-xml",
                str(report),
            ]
        )
        out = capsys.readouterr().out
        assert code == 1
        assert "semantics / unauthenticated_is_401 / predictChurn" in out
        assert "expected: 401 INVALID_API_KEY for a wrong key" in out
        assert "actual:   403 INSUFFICIENT_PERMISSIONS" in out
        curl = next(line for line in out.splitlines() if "reproduce:" in line)
        # The curl line really reproduces the failure.
        replay = subprocess.run(
            curl.split("reproduce: ", 1)[1] + " -o /dev/null -w '%{http_code}'",
            shell=True,
            capture_output=True,
            text=True,
            check=True,
        )
        assert replay.stdout == "403"
    failure = ET.parse(report).getroot().find("testsuite/testcase/failure")
    assert "actual: 403" in failure.text


def test_unreachable_target_exits_2(capsys):
    port = SandboxServer().start()
    url = port.url
    port.stop()
    assert cli.main(["--base-url", url, "--api-key", "k", *FAST]) == 2
    assert "cannot reach" in capsys.readouterr().err


def test_list_and_bad_select(capsys):
    assert cli.main(["--base-url", "http://127.0.0.1:9", "--api-key", "k", "--list"]) == 0
    assert "tenant_isolation" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        cli.main(["--base-url", "http://127.0.0.1:9", "--api-key", "k", "--select", "nope"])
    assert exited.value.code == 2


def test_rate_defaults_below_the_limit_for_remote_targets_only():
    remote = Options.build(base_url="https://staging.example.com", api_key="k")
    local = Options.build(base_url="http://127.0.0.1:8080", api_key="k")
    assert remote.rate_per_minute == REMOTE_DEFAULT_RATE < 100
    assert local.rate_per_minute is None
    assert (
        Options.build(base_url="https://x.example", api_key="k", rate="0").rate_per_minute is None
    )
    assert (
        parse_rate("30/min") == 30
        and is_local("http://localhost:1")
        and not is_local("http://10.0.0.1")
    )
    with pytest.raises(ValueError):
        parse_rate("-5")


def test_pacer_spaces_requests():
    pacer = Pacer(600)  # one request per 0.1 s
    started = time.monotonic()
    for _ in range(3):
        pacer.wait()
    assert time.monotonic() - started >= 0.2


def test_read_only_selection_has_no_ingestion():
    pairs = REGISTRY.select((), read_only=True)
    assert pairs and all(op not in ("ingestOrders", "ingestInteractions") for _, op in pairs)
    assert all(not check.writes for check, _ in pairs)


def test_curl_shows_the_key_and_quotes_the_body():
    exchange = Exchange(
        "POST",
        "http://h/api/x",
        {"X-API-Key": "qpk_test_a", "Accept": "*/*"},
        b'{"a": "it\'s"}',
        200,
        "",
    )
    assert exchange.curl() == (
        "curl -sS -X POST http://h/api/x -H 'X-API-Key: qpk_test_a' "
        '--data-raw \'{"a": "it\'"\'"\'s"}\''
    )


def test_violation_report_names_each_field():
    text = format_violation(
        {
            "method": "POST",
            "path": "/api/intelligence/predict/ltv",
            "status": 422,
            "violations": [{"path": "/horizon_months", "message": "'twelve' is not an integer"}],
        }
    )
    assert "/horizon_months: 'twelve' is not an integer" in text


def test_pytest_plugin_runs_the_same_checks(tmp_path):
    with SandboxServer(app=mutants.churn_disagrees_with_analyze()) as server:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--quimbi-base-url",
                server.url,
                "--quimbi-api-key",
                server.api_key,
                "--quimbi-seed",
                "5",
                "--quimbi-max-examples",
                "3",
                "--quimbi-select",
                "intelligence_consistency",
                "--quimbi-select",
                "documented_test_customers",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 1 passed" in result.stdout
    assert "expected: analyze's churn_risk equal to the prediction's" in result.stdout
