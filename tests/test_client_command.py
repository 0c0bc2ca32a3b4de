"""`quimbi-contract client`: a robust client script survives, each classic fragility is
found and shrunk to its minimal answer, with the report, replay line and JUnit."""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET

import pytest

from contract_tests import cli
from contract_tests.client.command import ClientOptions, run_command
from contract_tests.sandbox_server import SandboxServer
from tests.conftest import ROOT

SCRIPT = ROOT / "tests" / "data" / "client_script.py"


def command(mode: str) -> str:
    return f"{sys.executable} {SCRIPT} {mode}"


def run_cli(capsys, mode: str, *args: str) -> tuple[int, str, str]:
    code = cli.main(["client", "--command", command(mode), "--max-examples", "12", *args])
    out, err = capsys.readouterr()
    return code, out, err


def minimal_answer(report: str) -> tuple[int, dict, object]:
    status = int(re.search(r"minimal answer: status (\d+)", report).group(1))
    headers = json.loads(re.search(r"^   headers: (.*)$", report, re.M).group(1))
    body = json.loads(re.search(r"^   body: (.*)$", report, re.M).group(1))
    return status, headers, body


def test_a_robust_client_survives_and_writes_junit(capsys, tmp_path):
    report = tmp_path / "client.xml"
    code, out, err = run_cli(capsys, "robust", "--junit-xml", str(report))
    assert code == 0, out
    assert re.search(r"analyzeCustomer\s+passed\s+12", out)
    assert re.search(r"recommendActions\s+passed\s+12", out)
    assert "predictChurn" not in out  # not called, not asked for
    assert "2 survived, 0 broke" in out and "kit overhead" in out
    assert "passed        analyzeCustomer" in err  # progress on stderr
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "0"


def test_indexing_an_empty_list_shrinks_to_empty_guidance(capsys):
    code, out, _ = run_cli(capsys, "index_empty", "--statuses", "200")
    assert code == 1
    status, headers, body = minimal_answer(out)
    assert status == 200 and body["communication_guidance"] == []
    assert headers == {
        "X-RateLimit-Limit": "1",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "0",
    }
    assert body["behavioral_metrics"]["total_orders"] == 0  # shrunk everywhere
    assert "stderr: IndexError: list index out of range" in out
    replay = re.search(r"replay: (.*)", out).group(1)
    assert "quimbi-sandbox serve" in replay and "/_sandbox/faults" in replay
    assert command("index_empty") in replay


def test_assuming_an_optional_field_shrinks_to_an_action_without_it(capsys):
    code, out, _ = run_cli(capsys, "optional_field", "--statuses", "200")
    assert code == 1
    status, _, body = minimal_answer(out)
    assert status == 200
    assert body["actions"] == [{"action": "", "priority": 1, "reasoning": ""}]
    assert "KeyError: 'estimated_impact'" in out


def test_assuming_200_shrinks_to_the_first_error_status(capsys, tmp_path):
    report = tmp_path / "client.xml"
    code, out, _ = run_cli(capsys, "assume_200", "--junit-xml", str(report))
    assert code == 1
    status, headers, body = minimal_answer(out)
    assert status == 400  # the first documented error status: 200 itself passes
    assert body == {"error": {"code": "MALFORMED_JSON", "message": ""}}
    assert headers == {}
    failure = ET.parse(report).getroot().find("testsuite/testcase/failure")
    assert failure.get("message") == "CMD exited 1" and "minimal answer" in failure.text


def test_reading_retry_after_as_a_date_shrinks_to_retry_after_0(capsys):
    code, out, _ = run_cli(capsys, "retry_after_as_date", "--statuses", "429", "503")
    assert code == 1
    status, headers, _ = minimal_answer(out)
    # 503 with only its required header is shorter than 429 with its three rate-limit
    # ones: Hypothesis' "smallest" is the shortest sequence of choices.
    assert status in (429, 503) and headers["Retry-After"] == "0"
    assert "Invalid date value" in out


def test_an_off_contract_request_fails_against_the_personas_already(capsys):
    code, out, _ = run_cli(capsys, "off_contract")
    assert code == 1
    assert "fails against the persona sandbox already" in out
    assert "breaks the contract: POST /api/intelligence/analyze -> 422 /customer_id" in out


def test_a_command_that_calls_nothing_is_bad_usage(capsys):
    code = cli.main(["client", "--command", f"{sys.executable} -c pass"])
    _, err = capsys.readouterr()
    assert code == 2 and "called no Quimbi operation" in err


@pytest.mark.parametrize(
    "args",
    [["--operations", "noSuchOperation"], ["--max-examples", "0"], ["--timeout", "0"], []],
)
def test_bad_usage_exits_2(args):
    with pytest.raises(SystemExit) as exited:
        cli.main(["client", *(["--command", "true"] if args else []), *args])
    assert exited.value.code == 2


def test_a_command_past_its_timeout_is_killed_and_fails():
    with SandboxServer() as server:
        run = run_command(
            server, ClientOptions(f"{sys.executable} -c 'import time; time.sleep(30)'", timeout=0.5)
        )
    assert run.exit_code is None and run.seconds < 10
    assert run.problem == "CMD did not finish within --timeout"
