"""The console: one access line per request on stdout, and a start-up banner that says
where to go next. Real server processes, their output read as a user's terminal would."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from contract_tests.sandbox_server import SandboxServer
from sandbox.accesslog import CALL_KEY, AccessLog, wants_colour
from sandbox.api.pipeline import CALL_KEY as PIPELINE_CALL_KEY
from tests.conftest import DEFAULT_KEY, ServerProcess, free_port

ANALYZE = "/api/intelligence/analyze"
MESSAGE = "/api/generation/message"
GUIDE_KEY = "qpk_live_abc123xyz"
NO_PROFILE = {"context": {"channel": "email", "goal": "upsell"}}  # one problem: no profile
COLOUR = re.compile(r"\x1b\[[0-9;]*m")
# time, method, path, status: the start of every text line
LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}|---)")


def request_lines(output: str) -> list[str]:
    """The access lines, without those of the health probes ServerProcess.start() made."""
    return [
        line
        for line in output.splitlines()
        if LINE.match(line) and LINE.match(line)["path"] != "/_sandbox/health"
    ]


def only_line(output: str, method: str, path: str) -> str:
    """The one line for ``method path``; fails if there is none or more than one."""
    found = [
        line
        for line in request_lines(output)
        if LINE.match(line)["method"] == method and LINE.match(line)["path"] == path
    ]
    assert len(found) == 1, (method, path, output)
    return found[0]


def test_every_kind_of_request_gets_one_line_with_what_happened():
    with ServerProcess("--rate-limit", "off", "--max-body-bytes", "2000") as server:
        assert server.post(ANALYZE, {"customer_id": "c1", "context": {}}).status_code == 200
        off_contract = server.post(MESSAGE, NO_PROFILE)
        assert off_contract.status_code == 422
        assert server.get("/no/such/path").status_code == 404
        assert requests.delete(server.url + ANALYZE, timeout=10).status_code == 405
        assert server.get("/_sandbox/violations", key=None).status_code == 200
        assert server.get("/docs", key=None).status_code == 200
        faulted = server.post(
            ANALYZE, {"customer_id": "c2", "context": {}}, headers={"X-Sandbox-Fault": "503"}
        )
        assert faulted.status_code == 503
        with pytest.raises(requests.ConnectionError):
            server.post(
                ANALYZE, {"customer_id": "c3", "context": {}}, headers={"X-Sandbox-Fault": "reset"}
            )
        assert (
            server.post(ANALYZE, {"customer_id": "c4", "context": {}}, key=None).status_code == 401
        )
        too_large = {"customer_id": "c5", "context": {"note": "x" * 3000}}
        assert server.post(ANALYZE, too_large).status_code == 413
    output = server.output()  # the server has stopped: everything it printed is in

    assert not COLOUR.search(output)  # a pipe is no terminal
    lines = request_lines(output)
    assert len(lines) == 10, output  # once each: none lost, none twice
    tenant = "linda_quilting"  # qpk_test_sandbox's
    ok = [line for line in lines if " 200 (" in line and line.split()[2] == ANALYZE]
    assert len(ok) == 1 and ok[0].endswith(f" ms, {tenant})"), output
    assert (
        f"POST {MESSAGE} 422 VALIDATION_ERROR /customer_profile: "
        "'customer_profile' is a required property"
    ) in only_line(output, "POST", MESSAGE)
    assert "404 ENDPOINT_NOT_FOUND No endpoint GET /no/such/path." in only_line(
        output, "GET", "/no/such/path"
    )
    assert "405 METHOD_NOT_ALLOWED" in only_line(output, "DELETE", ANALYZE)
    assert re.search(r" 200 \(\d+\.\d ms\)$", only_line(output, "GET", "/_sandbox/violations"))
    assert " 200 (" in only_line(output, "GET", "/docs")
    assert "503 SERVICE_UNAVAILABLE fault 503; source=header (" in output
    assert re.search(rf" --- fault reset; source=header \(\d+\.\d ms, {tenant}\)$", output, re.M)
    assert "401 INVALID_API_KEY header:X-API-Key: Missing API key" in output
    assert "413 PAYLOAD_TOO_LARGE" in output


def test_the_banner_says_where_to_go_next():
    with ServerProcess("--admin-token", "s3cret") as server:
        banner = server.output()
    url = server.url
    assert f"on {url} " in banner
    assert f"API docs     {url}/docs" in banner
    assert f"X-API-Key: {DEFAULT_KEY}" in banner
    assert f"Control API  {url}/_sandbox/" in banner and "Bearer" in banner
    assert "s3cret" not in banner
    assert "Access log   stdout, one text line per request" in banner

    with ServerProcess("--no-control", "--no-access-log") as server:
        banner = server.output()
    assert f"Control API  off (--no-control): only {server.url}/_sandbox/health" in banner
    assert "Access log   off" in banner


def test_json_lines_carry_the_journal_entry_with_the_key_redacted():
    with ServerProcess("--log-format", "json") as server:
        server.post(MESSAGE, NO_PROFILE, key=GUIDE_KEY)
        server.post(
            ANALYZE, {"customer_id": "test_customer_unavailable", "context": {}}, key=GUIDE_KEY
        )
        journal = server.get("/_sandbox/requests", key=None).json()["requests"]
        server.wait_for_line('"/_sandbox/requests"')
        output = server.output()
    printed = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    by_id = {entry["id"]: entry for entry in printed if "id" in entry}
    assert [entry["id"] for entry in journal] == list(by_id)  # the same requests, in order
    for entry in journal:
        line = by_id[entry["id"]]
        # The journal's fields; the duration is the server's own clock, so close, not equal.
        assert {k: v for k, v in line.items() if k != "duration_ms"} == {
            k: v for k, v in entry.items() if k != "duration_ms"
        }
        assert line["api_key"] == "qpk_live…"
    assert GUIDE_KEY not in output
    violation = by_id[journal[0]["id"]]
    assert violation["verdict"] == "violation" and violation["status"] == 422
    assert {
        "path": "/customer_profile",
        "message": "'customer_profile' is a required property",
    } in (violation["problems"])
    assert (
        by_id[journal[1]["id"]]["fault_injected"]
        == "503; source=customer:test_customer_unavailable"
    )
    control = next(entry for entry in printed if entry["path"] == "/_sandbox/requests")
    assert control["status"] == 200 and control["tenant"] is None
    assert set(control) == set(violation) - {"id"}


@pytest.mark.parametrize(
    ("args", "env"),
    [(("--no-access-log",), {}), ((), {"QUIMBI_SANDBOX_ACCESS_LOG": "false"})],
    ids=["flag", "env"],
)
def test_the_access_log_can_be_turned_off(args, env):
    with ServerProcess(*args, env=env) as server:
        server.post(ANALYZE, {"customer_id": "c1", "context": {}})
        server.post(MESSAGE, NO_PROFILE)
        server.get("/nowhere")
    output = server.output()  # the server has stopped: everything it printed is in
    assert "Quimbi Sandbox" in output
    assert request_lines(output) == [] and "{" not in output


def test_workers_write_whole_lines(redis_url):
    """Two processes share one stdout: each line is one write, so none is cut or mixed."""
    with ServerProcess(
        "--workers", "2", "--store", redis_url, "--log-format", "json", "--rate-limit", "off"
    ) as server:
        before = server.output().count("\n")
        body = json.dumps({"customer_id": "c1", "context": {}})
        headers = {"X-API-Key": DEFAULT_KEY, "Content-Type": "application/json"}

        def call(_: int) -> int:
            # A new connection each time, so both workers accept some of them.
            return sum(
                requests.post(
                    server.url + ANALYZE, data=body, headers=headers, timeout=10
                ).status_code
                == 200
                for _ in range(50)
            )

        with ThreadPoolExecutor(4) as pool:
            assert sum(pool.map(call, range(4))) == 200
    output = server.output()
    lines = [json.loads(line) for line in output.splitlines()[before:] if line.startswith("{")]
    analyzed = [line for line in lines if line["path"] == ANALYZE]
    assert len(analyzed) == 200
    assert len({line["id"].split("-")[0] for line in analyzed}) == 2  # both workers logged


def test_colour_on_a_terminal():
    port = free_port()
    main, replica = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    command = [sys.executable, "-m", "sandbox", "serve", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port)], stdout=replica, stderr=subprocess.DEVNULL, env=env
    )
    os.close(replica)
    seen = b""
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                requests.post(
                    url + MESSAGE,
                    json=NO_PROFILE,
                    timeout=1,
                    headers={"X-API-Key": DEFAULT_KEY},
                )
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        while b"VALIDATION_ERROR" not in seen and time.monotonic() < deadline:
            if select.select([main], [], [], 0.5)[0]:
                seen += os.read(main, 4096)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
        os.close(main)
    text = seen.decode()
    assert "\x1b[33m422\x1b[0m VALIDATION_ERROR" in text, text
    assert "\x1b[31m/customer_profile: 'customer_profile' is a required property" in text, text


def test_no_color_and_pipes_get_no_colour():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert wants_colour(Terminal(), environ={})
    assert not wants_colour(Terminal(), environ={"NO_COLOR": "1"})
    assert not wants_colour(io.StringIO(), environ={})


def test_a_path_cannot_send_escape_sequences_to_the_terminal():
    out = io.StringIO()
    AccessLog("text", out, colour=False).request(
        {"REQUEST_METHOD": "GET", "PATH_INFO": "/a\x1b[2Jb"}, 404, 0.001
    )
    line = out.getvalue()
    assert "\x1b" not in line and "/a\\x1b[2Jb 404 (1.0 ms)" in line


def test_a_path_is_shown_as_the_utf8_it_spells():
    out = io.StringIO()
    log = AccessLog("text", out, colour=False)
    # PEP 3333: the bytes of /café as latin-1 text.
    log.request({"REQUEST_METHOD": "GET", "PATH_INFO": "/caf\xc3\xa9"}, 404, 0.001)
    assert " GET /café 404 " in out.getvalue()


def test_the_access_log_reads_the_pipelines_records():
    assert CALL_KEY == PIPELINE_CALL_KEY


def test_the_in_process_sandbox_logs_when_asked(capsys):
    with SandboxServer(access_log=True, log_format="json") as sandbox:
        requests.post(
            sandbox.url + MESSAGE,
            json=NO_PROFILE,
            headers={"X-API-Key": DEFAULT_KEY},
            timeout=10,
        )
        with pytest.raises(requests.ConnectionError):
            requests.post(
                sandbox.url + ANALYZE,
                json={"customer_id": "c1", "context": {}},
                headers={"X-API-Key": DEFAULT_KEY, "X-Sandbox-Fault": "reset"},
                timeout=10,
            )
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(p["path"], p["status"], p["error_code"]) for p in printed] == [
        (MESSAGE, 422, "VALIDATION_ERROR"),
        (ANALYZE, None, None),
    ]
    assert printed[1]["fault_injected"] == "reset; source=header"
    with SandboxServer() as sandbox:  # quiet by default
        requests.get(sandbox.url + "/nowhere", timeout=10)
    assert capsys.readouterr().out == ""
