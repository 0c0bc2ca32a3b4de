"""Coverage: which documented answers each operation served, counted past the journal."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests

from contract_tests import cli
from contract_tests.coverage import merge
from contract_tests.sandbox_server import SandboxServer
from sandbox.app import create_app
from sandbox.coverage import documented_answers
from tests.conftest import ServerProcess, eventually

ANALYZE = "/api/intelligence/analyze"
KEY = {"X-API-Key": "test_key_12345"}


def test_documented_answers_come_from_the_contract(contract):
    answers = documented_answers(contract)
    assert answers["analyzeCustomer"][:3] == ["200", "400 MALFORMED_JSON", "401 INVALID_API_KEY"]
    assert "404 CUSTOMER_NOT_FOUND" in answers["predictChurn"]
    assert "404 INDUSTRY_NOT_FOUND" in answers["getIndustryBenchmarks"]
    assert "403 INSUFFICIENT_PERMISSIONS" in answers["ingestOrders"]
    assert not any(a.startswith("404") for a in answers["getMyPosition"])
    assert len(answers) == 9


def test_counts_outlive_the_journal_and_reset_with_the_state():
    client = create_app(journal_size=5, rate_limit="off").test_client()
    for _ in range(12):
        client.post(ANALYZE, json={"customer_id": "test_customer_high_ltv"}, headers=KEY)
    client.post(ANALYZE, json={"customer_id": 7}, headers=KEY)
    client.post(ANALYZE, json={"customer_id": "x"}, headers={**KEY, "X-Sandbox-Fault": "503"})
    client.get("/api/insights/my-position", headers={**KEY, "X-Sandbox-Fault": "404"})
    client.post(ANALYZE, json={"customer_id": "x"}, headers={**KEY, "X-Sandbox-Latency": "1"})
    assert len(client.get("/_sandbox/requests").json["requests"]) == 5

    report = client.get("/_sandbox/coverage").json
    analyze = report["operations"]["analyzeCustomer"]
    assert analyze["calls"] == 15
    assert analyze["answers"]["200"] == 13
    assert analyze["answers"]["422 VALIDATION_ERROR"] == 1
    assert analyze["answers"]["503 SERVICE_UNAVAILABLE"] == 1
    assert analyze["answers"]["404 CUSTOMER_NOT_FOUND"] == 0
    assert analyze["faults"]["503"] == 1 and analyze["faults"]["latency"] == 1
    assert analyze["served"] == 3 and analyze["documented"] == 10
    # A 404 my-position never documents: served, but listed apart.
    assert report["operations"]["getMyPosition"]["undocumented"] == {"404 ENDPOINT_NOT_FOUND": 1}
    assert "predictChurn" in report["never_called"]
    assert "analyzeCustomer" not in report["never_called"]
    assert report["served_answers"] == 3
    assert report["percent"] == round(100 * 3 / report["documented_answers"], 1)

    only = client.get("/_sandbox/coverage?operations=analyzeCustomer").json
    assert list(only["operations"]) == ["analyzeCustomer"] and only["percent"] == 30.0
    other = client.get("/_sandbox/coverage?tenant=acme_outdoor").json
    assert other["operations"]["analyzeCustomer"]["calls"] == 0
    bad = client.get("/_sandbox/coverage?operations=nope")
    assert bad.status_code == 422 and bad.json["error"]["code"] == "VALIDATION_ERROR"

    client.post("/_sandbox/reset")
    assert client.get("/_sandbox/coverage").json["operations"]["analyzeCustomer"]["calls"] == 0


def test_network_faults_count_as_faults_not_answers():
    client = create_app(rate_limit="off").test_client()
    with pytest.raises(ConnectionResetError):
        client.post(ANALYZE, json={"customer_id": "x"}, headers={**KEY, "X-Sandbox-Fault": "reset"})
    client.post(ANALYZE, json={"customer_id": "x"}, headers={**KEY, "X-Sandbox-Fault": "malformed"})
    analyze = client.get("/_sandbox/coverage").json["operations"]["analyzeCustomer"]
    assert analyze["faults"]["reset"] == 1 and analyze["faults"]["malformed"] == 1
    assert analyze["calls"] == 2 and analyze["served"] == 0


def test_two_workers_on_redis_share_the_counts(redis_url):
    with ServerProcess(
        "--store", redis_url, "--workers", "2", "--journal-size", "5", "--rate-limit", "off"
    ) as server:
        for i in range(30):
            server.post(ANALYZE, {"customer_id": f"c-{i}"})
        with pytest.raises(requests.ConnectionError):
            server.post(ANALYZE, {"customer_id": "x"}, headers={"X-Sandbox-Fault": "reset"})
        report = eventually(
            lambda: server.get("/_sandbox/coverage", key=None).json(),
            lambda got: got["operations"]["analyzeCustomer"]["calls"] >= 31,
        )
        pids = {
            e["id"].split("-")[0]
            for e in server.get("/_sandbox/requests", key=None).json()["requests"]
        }
    analyze = report["operations"]["analyzeCustomer"]
    assert analyze["answers"]["200"] == 30
    assert analyze["faults"]["reset"] == 1 and analyze["calls"] == 31
    assert len(pids) >= 1


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = cli.main(["coverage", *args])
    return code, capsys.readouterr().out


def test_fail_under_passes_and_fails_at_the_threshold(capsys, tmp_path):
    with SandboxServer() as sandbox:
        url = sandbox.url
        headers = {"X-API-Key": sandbox.api_key}
        sandbox.http.post(sandbox.url + ANALYZE, json={"customer_id": "c"}, headers=headers)
        sandbox.http.post(sandbox.url + ANALYZE, json={}, headers=headers)
        # 2 of analyzeCustomer's 10 documented answers: 20%.
        base = ["--base-url", sandbox.url, "--operations", "analyzeCustomer"]
        code, out = run_cli(capsys, *base, "--fail-under", "20", "--json", str(tmp_path / "c.json"))
        assert code == 0, out
        assert "2 of 10 documented answers served (20%)" in out
        assert "404 CUSTOMER_NOT_FOUND" in out
        assert json.loads((tmp_path / "c.json").read_text())["percent"] == 20.0
        code, out = run_cli(capsys, *base, "--fail-under", "20.1")
        assert code == 1 and "FAIL: 20% of documented answers served" in out
        code, out = run_cli(capsys, "--base-url", sandbox.url)
        assert code == 0 and "never called" in out
    assert run_cli(capsys, "--base-url", url)[0] == 2  # stopped: cannot be asked


def test_merge_sums_reports():
    one = {
        "operations": {
            "a": {"calls": 1, "answers": {"200": 1, "404 X": 0}, "undocumented": {}, "faults": {}}
        }
    }
    two = {
        "operations": {
            "a": {
                "calls": 2,
                "answers": {"200": 0, "404 X": 2},
                "undocumented": {},
                "faults": {"reset": 1},
            }
        }
    }
    merged = merge([one, two])
    assert merged["operations"]["a"]["answers"] == {"200": 1, "404 X": 2}
    assert merged["percent"] == 100.0 and merged["operations"]["a"]["faults"] == {"reset": 1}


def test_pytest_session_prints_and_writes_the_summary(tmp_path):
    (tmp_path / "test_client.py").write_text(
        "import requests\n"
        "def test_one(quimbi_sandbox):\n"
        "    requests.post(quimbi_sandbox.url + '/api/intelligence/analyze',\n"
        "                  json={'customer_id': 'c'},\n"
        "                  headers={'X-API-Key': quimbi_sandbox.api_key})\n"
        "def test_two(quimbi_sandbox):\n"
        "    requests.post(quimbi_sandbox.url + '/api/intelligence/analyze', json={},\n"
        "                  headers={'X-API-Key': quimbi_sandbox.api_key})\n"
    )
    out_json = tmp_path / "coverage.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "test_client.py",
            f"--quimbi-coverage-json={out_json}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Quimbi sandbox: what your tests never tried" in result.stdout
    assert "2 of 79 documented answers served" in result.stdout
    report = json.loads(out_json.read_text())
    assert report["operations"]["analyzeCustomer"]["answers"]["422 VALIDATION_ERROR"] == 1
    assert report["operations"]["analyzeCustomer"]["calls"] == 2


def test_readme_documents_every_coverage_flag():
    from contract_tests.coverage import build_parser
    from tests.test_readme import README

    for action in build_parser()._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert f"`{flag}" in README, flag
    assert "`--quimbi-coverage-json" in README


def test_a_tenant_reset_zeroes_only_that_tenants_counts():
    client = create_app(rate_limit="off").test_client()
    client.post(ANALYZE, json={"customer_id": "c"}, headers=KEY)
    client.post(ANALYZE, json={"customer_id": "c"}, headers={"X-API-Key": "qpk_test_acme"})
    client.post("/_sandbox/reset?tenant=linda_quilting")

    def calls(tenant: str) -> int:
        report = client.get(f"/_sandbox/coverage?tenant={tenant}").json
        return report["operations"]["analyzeCustomer"]["calls"]

    assert calls("linda_quilting") == 0 and calls("acme_outdoor") == 1
