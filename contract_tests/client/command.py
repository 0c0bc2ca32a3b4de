"""`quimbi-contract client --command CMD`: any client, in any language, against answers
generated from the contract.

Starts the sandbox in-process on a free loopback port, runs CMD once against the
persona sandbox (the probe: which operations does it call, and does it work at all),
then, per operation it called, runs CMD once per generated answer, the sandbox giving
that answer to CMD's calls of that operation (a ``respond`` rule; its other calls get
the persona's answers). A run fails when CMD exits non-zero, outlives ``--timeout``, or
sends a request that breaks the contract. Hypothesis drives the answers, so a failure
shrinks to the smallest answer that still breaks the client; the report gives it with
CMD's last stderr lines and a one-line replay.

Exit status as ``quimbi-contract``: 0 the client survived every answer, 1 it broke (or
failed against the persona sandbox already), 2 bad usage or CMD called no operation.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract_tests import junit
from contract_tests.client.answers import Answer, generator
from contract_tests.sandbox_server import DEFAULT_KEY, SandboxServer

PASSED, FAILED, SKIPPED = "passed", "failed", "not exercised"
STDERR_LINES = 12
REPLAY_PORT = 8080


@dataclass(frozen=True)
class ClientOptions:
    command: str
    operations: tuple[str, ...] = ()  # () = every operation CMD calls
    statuses: tuple[int, ...] = ()  # () = every documented status
    max_examples: int = 25
    seed: int = 0
    timeout: float = 30.0


@dataclass
class Run:
    """One run of CMD: how it ended and what the sandbox saw."""

    exit_code: int | None  # None: killed at the timeout
    stderr: str
    seconds: float
    violations: list[dict[str, Any]]
    operations: list[str]  # the operations CMD called, in order
    exercised: bool = False  # the generated answer was served

    @property
    def problem(self) -> str | None:
        if self.exit_code is None:
            return "CMD did not finish within --timeout"
        if self.exit_code != 0:
            return f"CMD exited {self.exit_code}"
        if self.violations:
            first = self.violations[0]
            listed = (first.get("problems") or [{}])[0]
            return (
                f"CMD sent a request that breaks the contract: {first.get('method')} "
                f"{first.get('path')} -> {first.get('status')} {listed.get('path', '')} "
                f"{listed.get('message', '')}".rstrip()
            )
        return None

    def stderr_tail(self) -> list[str]:
        return self.stderr.rstrip().splitlines()[-STDERR_LINES:]


@dataclass
class Outcome:
    operation: str
    outcome: str
    seconds: float
    runs: int = 0
    cmd_seconds: float = 0.0
    answer: Answer | None = None
    run: Run | None = None
    replay: str = ""
    message: str = ""


class ClientBroke(AssertionError):
    pass


def _path_glob(path: str) -> str:
    """``/api/insights/benchmarks/{industry}`` as a rule's path glob."""
    parts = ["*" if part.startswith("{") else part for part in path.split("/")]
    return "/".join(parts)


def run_command(server: SandboxServer, options: ClientOptions) -> Run:
    environ = {**os.environ, "QUIMBI_BASE_URL": server.url, "QUIMBI_API_KEY": server.api_key}
    started = time.perf_counter()
    process = subprocess.Popen(
        options.command,
        shell=True,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,  # so a timeout ends CMD's children too
    )
    try:
        _, stderr = process.communicate(timeout=options.timeout)
        exit_code: int | None = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        exit_code = None
    seconds = time.perf_counter() - started
    journal = server.requests()
    return Run(
        exit_code,
        stderr,
        seconds,
        [entry for entry in journal if entry.get("verdict") == "violation"],
        [entry["operation_id"] for entry in journal if entry.get("operation_id")],
    )


def replay_line(operation_id: str, answer: Answer, options: ClientOptions) -> str:
    operation = generator().contract.operation(operation_id)
    rule = {
        "respond": answer.as_dict(),
        "match": {"method": operation.method, "path": _path_glob(operation.path)},
    }
    base = f"http://127.0.0.1:{REPLAY_PORT}"
    return (
        f"(quimbi-sandbox serve --port {REPLAY_PORT} &) && sleep 1 && "
        f"curl -s -X POST {base}/_sandbox/faults -H 'Content-Type: application/json' "
        f"-d {shlex.quote(json.dumps(rule, ensure_ascii=False))} && "
        f"QUIMBI_BASE_URL={base} QUIMBI_API_KEY={DEFAULT_KEY} {options.command}"
    )


def check_operation(server: SandboxServer, options: ClientOptions, operation_id: str) -> Outcome:
    from hypothesis import HealthCheck, Phase, given, seed, settings

    documented = generator().statuses(operation_id)
    chosen = [s for s in documented if not options.statuses or s in options.statuses]
    if not chosen:
        return Outcome(operation_id, SKIPPED, 0.0, message="documents none of --statuses")
    strategy = generator().strategy(operation_id, chosen)
    operation = generator().contract.operation(operation_id)
    match = {"method": operation.method, "path": _path_glob(operation.path)}
    started = time.perf_counter()
    seen: dict[str, Any] = {"runs": 0, "cmd": 0.0, "exercised": False, "last": None}

    @seed(options.seed)
    @settings(
        max_examples=options.max_examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(answer=strategy)
    def client_survives(answer: Answer) -> None:
        server.reset()
        with server.respond_with(answer, **match) as rule:
            run = run_command(server, options)
            fired = server._control("GET", "/faults")["rules"]
            run.exercised = any(r["id"] == rule["id"] and r["fired"] for r in fired)
        seen["runs"] += 1
        seen["cmd"] += run.seconds
        seen["exercised"] |= run.exercised
        seen["last"] = (answer, run)
        problem = run.problem
        if problem is not None:
            raise ClientBroke(problem)

    try:
        client_survives()
    except ClientBroke:
        answer, run = seen["last"]  # Hypothesis replays the shrunk example last
        return Outcome(
            operation_id,
            FAILED,
            time.perf_counter() - started,
            seen["runs"],
            seen["cmd"],
            answer,
            run,
            replay_line(operation_id, answer, options),
        )
    outcome = PASSED if seen["exercised"] else SKIPPED
    return Outcome(
        operation_id,
        outcome,
        time.perf_counter() - started,
        seen["runs"],
        seen["cmd"],
        message="" if seen["exercised"] else "CMD never received the generated answer",
    )


def run_client(options: ClientOptions, progress=None) -> tuple[list[Outcome], Run]:
    """The probe, then each operation CMD called (or --operations)."""
    with SandboxServer() as server:
        probe = run_command(server, options)
        called = list(dict.fromkeys(probe.operations))
        if probe.problem is not None:
            return [], probe
        wanted = [op for op in options.operations or called]
        outcomes = []
        for operation_id in generator().contract.operations:
            if operation_id not in wanted:
                continue
            if operation_id not in called:
                outcome = Outcome(operation_id, SKIPPED, 0.0, message="CMD never calls it")
            else:
                outcome = check_operation(server, options, operation_id)
            outcomes.append(outcome)
            if progress:
                progress(outcome)
        return outcomes, probe


def format_report(outcomes: list[Outcome], probe: Run, options: ClientOptions) -> str:
    lines: list[str] = []
    if probe.problem is not None:
        lines.append("CMD fails against the persona sandbox already (before any generated answer):")
        lines.append(f"   {probe.problem}")
        lines.extend(f"   stderr: {line}" for line in probe.stderr_tail())
        return "\n".join(lines) + "\n"
    for number, outcome in enumerate([o for o in outcomes if o.outcome == FAILED], start=1):
        assert outcome.answer is not None and outcome.run is not None
        lines.append(f"{number}. client / {outcome.operation} / status {outcome.answer.status}")
        lines.append(f"   {outcome.run.problem}")
        lines.append(f"   minimal answer: status {outcome.answer.status}")
        lines.append(f"   headers: {json.dumps(outcome.answer.headers, ensure_ascii=False)}")
        lines.append(f"   body: {json.dumps(outcome.answer.body, ensure_ascii=False)}")
        lines.extend(f"   stderr: {line}" for line in outcome.run.stderr_tail())
        lines.append(f"   replay: {outcome.replay}")
        lines.append("")
    width = max([len("operation"), *(len(o.operation) for o in outcomes)])
    lines.append(f"{'operation'.ljust(width)}  {'outcome':<13}  runs  note")
    for outcome in outcomes:
        note = outcome.message or (
            f"status {outcome.answer.status}" if outcome.answer is not None else ""
        )
        row = f"{outcome.operation.ljust(width)}  {outcome.outcome:<13}  {outcome.runs:>4}  {note}"
        lines.append(row.rstrip())
    counts = Counter(o.outcome for o in outcomes)
    runs = sum(o.runs for o in outcomes)
    overhead = sum(o.seconds - o.cmd_seconds for o in outcomes)
    per_case = f"{overhead / runs * 1000:.0f} ms" if runs else "-"
    lines.append(
        f"{counts[PASSED]} survived, {counts[FAILED]} broke, {counts[SKIPPED]} not exercised; "
        f"{runs} runs of CMD, kit overhead {per_case} per run beyond CMD's own time; "
        f"seed {options.seed} (rerun with --seed {options.seed})"
    )
    return "\n".join(lines) + "\n"


def write_junit(outcomes: list[Outcome], path: Path, options: ClientOptions) -> None:
    counts = Counter(o.outcome for o in outcomes)
    suite = junit.suite(
        "quimbi-contract client",
        tests=len(outcomes),
        failures=counts[FAILED],
        errors=0,
        skipped=counts[SKIPPED],
        seconds=sum(o.seconds for o in outcomes),
        properties=[("command", options.command), ("seed", str(options.seed))],
    )
    for outcome in outcomes:
        case = junit.case(
            suite, "client.survives_generated_answers", outcome.operation, outcome.seconds
        )
        if outcome.outcome == FAILED and outcome.answer is not None and outcome.run is not None:
            element = ET.SubElement(case, "failure", message=outcome.run.problem or "")
            element.text = "\n".join(
                [
                    f"minimal answer: {json.dumps(outcome.answer.as_dict(), ensure_ascii=False)}",
                    *outcome.run.stderr_tail(),
                    f"replay: {outcome.replay}",
                ]
            )
        elif outcome.outcome == SKIPPED:
            ET.SubElement(case, "skipped", message=outcome.message)
    junit.write(suite, path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quimbi-contract client",
        description="Run CMD against answers generated from the contract; shrink what breaks it.",
    )
    parser.add_argument(
        "--command",
        required=True,
        metavar="CMD",
        help="shell command running your client (QUIMBI_BASE_URL, QUIMBI_API_KEY exported)",
    )
    parser.add_argument("--operations", nargs="+", default=[], metavar="ID")
    parser.add_argument("--statuses", nargs="+", type=int, default=[], metavar="STATUS")
    parser.add_argument("--max-examples", type=int, default=25, metavar="N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SEC")
    parser.add_argument("--junit-xml", type=Path, metavar="FILE")
    return parser


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    known = generator().contract.operations
    unknown = [op for op in args.operations if op not in known]
    if unknown:
        parser.error(f"--operations: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    if args.max_examples < 1:
        parser.error("--max-examples must be >= 1")
    if not args.timeout > 0:
        parser.error("--timeout must be > 0")
    options = ClientOptions(
        args.command,
        tuple(args.operations),
        tuple(args.statuses),
        args.max_examples,
        args.seed,
        args.timeout,
    )

    def show(outcome: Outcome) -> None:
        sys.stderr.write(f"{outcome.outcome:<13} {outcome.operation} ({outcome.runs} runs)\n")
        sys.stderr.flush()

    outcomes, probe = run_client(options, progress=show)
    sys.stdout.write(format_report(outcomes, probe, options))
    if args.junit_xml:
        write_junit(outcomes, args.junit_xml, options)
    if probe.problem is not None:
        return 1
    if not probe.operations:
        sys.stderr.write("quimbi-contract client: CMD called no Quimbi operation\n")
        return 2
    return 1 if any(o.outcome == FAILED for o in outcomes) else 0
