"""bench/RESULTS.md from one run's figures, with the issue's targets checked against them.

Everything above the notes marker is rewritten on every run; what follows it (the
hand-written explanation of the figures) is kept.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

NOTES_MARKER = (
    "<!-- notes: everything below this line is kept when bench/run.py rewrites the file -->"
)
SANDBOX, QUIET, LOUD, FLOOR = "sandbox", "prism (quiet)", "prism (default log)", "floor"
SANDBOX_OFF = "sandbox (limit off)"
REDIS, REDIS_WORKERS = "sandbox (redis)", "sandbox (redis, 2 workers)"
REDIS_REPLICAS = "sandbox (redis, 2 replicas + nginx)"
# Every request counted, none refused: at ~9,000 req/s a run makes ~500,000 a minute.
HIGH_LIMIT = "10000000/min,100000000/hour"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def _load_table(per_server: dict[str, dict[int, Any]]) -> list[str]:
    names = list(per_server)
    lines = [
        "| c | "
        + " | ".join(f"{n} req/s · p50 · p99 (ms)" for n in names)
        + " | sandbox/prism quiet |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for connections in sorted(next(iter(per_server.values()))):
        cells = []
        for name in names:
            r = per_server[name][connections]
            errors = f" ({r.non_2xx} non-2xx)" if r.non_2xx else ""
            cells.append(f"{r.rps:,.0f} · {r.p50_ms:.2f} · {r.p99_ms:.2f}{errors}")
        ratio = "n/a"
        if SANDBOX in per_server and QUIET in per_server:
            ratio = _ratio(per_server[SANDBOX][connections].rps, per_server[QUIET][connections].rps)
        lines.append(f"| {connections} | " + " | ".join(cells) + f" | {ratio} |")
    return lines


def _target_rows(memory: dict[str, dict[str, float]], load: dict[str, Any]) -> list[tuple]:
    """(name, wanted, measured, bound, unit): a positive bound is a floor, a negative one
    a ceiling."""
    at8 = {name: runs[8] for name, runs in load["analyze_magic"].items()}
    sandbox, quiet, loud, floor = at8[SANDBOX], at8[QUIET], at8[LOUD], at8[FLOOR]
    mem = memory[SANDBOX]
    rows = [
        ("analyze c=8 vs Prism quiet", ">= 1.0x", sandbox.rps / quiet.rps, 1.0, "x"),
        ("analyze c=8 vs Prism default logging", ">= 1.7x", sandbox.rps / loud.rps, 1.7, "x"),
        ("analyze c=8 vs bare-Flask floor", ">= 70 %", sandbox.rps / floor.rps * 100, 70, "%"),
        ("analyze c=8 p99 vs Prism quiet p99", "<= 1.0x", sandbox.p99_ms / quiet.p99_ms, -1.0, "x"),
        ("start-up to first 200", "<= 0.5 s", mem["startup_s"], -0.5, " s"),
        ("idle RSS (whole process tree)", "<= 80 MB", mem["rss_idle_mb"], -80, " MB"),
        ("idle PSS (process tree)", "<= 80 MB", mem["pss_idle_mb"], -80, " MB"),
        ("RSS growth per ingested order", "<= 1024 B", mem["growth_bytes_per_order"], -1024, " B"),
    ]
    magic8 = {name: runs[8] for name, runs in load["analyze_magic"].items()}
    random8 = {name: runs[8] for name, runs in load.get("analyze_random", {}).items()}
    if SANDBOX in random8 and QUIET in random8:
        ratio = random8[SANDBOX].rps / random8[QUIET].rps
        rows.append(("random customers (memory) c=8 vs Prism quiet", ">= 1.0x", ratio, 1.0, "x"))
    if REDIS in magic8:
        ratio = magic8[REDIS].rps / magic8[SANDBOX].rps * 100
        rows.append(("Redis, 1 process, magic c=8 vs memory", ">= 50 %", ratio, 50, "%"))
    if REDIS in random8:
        ratio = random8[REDIS].rps / random8[SANDBOX].rps * 100
        rows.append(("Redis, 1 process, random c=8 vs memory", ">= 40 %", ratio, 40, "%"))
    if REDIS in random8 and REDIS_WORKERS in random8:
        ratio = random8[REDIS_WORKERS].rps / random8[REDIS].rps
        rows.append(("Redis, 2 workers vs 1, random c=8", ">= 1.3x", ratio, 1.3, "x"))
    return rows


def _shown(value: float, unit: str) -> str:
    return f"{value:.2f}{unit}" if unit in {"x", " s"} else f"{value:,.0f}{unit}"


def _met(value: float, bound: float) -> bool:
    return value >= bound if bound > 0 else value <= -bound


def _targets(rows: list[tuple]) -> list[str]:
    lines = ["| Target | Wanted | Measured | Met |", "|---|---|---|---|"]
    for name, wanted, value, bound, unit in rows:
        met = "yes" if _met(value, bound) else "**no**"
        lines.append(f"| {name} | {wanted} | {_shown(value, unit)} | {met} |")
    return lines


def _history(path: Path, rows: list[tuple]) -> list[str]:
    """Appends this run's targets to bench/history.jsonl; the table of it and the two runs
    before it (a target whose runs disagree beyond noise shows it here)."""
    run = {
        "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": _commit(),
        "targets": {name: [value, bound, unit] for name, _, value, bound, unit in rows},
    }
    history = path.parent / "history.jsonl"
    with history.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(run) + "\n")
    runs = [json.loads(line) for line in history.read_text(encoding="utf-8").splitlines()][-3:]
    heads = [f"{r['time']} ({r['commit']})" for r in runs]
    lines = [
        "| Target | Wanted | " + " | ".join(heads) + " | Met in all |",
        "|---|---|" + "---|" * len(runs) + "---|",
    ]
    for name, wanted, *_ in rows:
        seen = [r["targets"].get(name) for r in runs]
        cells = [_shown(v[0], v[2]) if v else "-" for v in seen]
        met = all(v is not None and _met(v[0], v[1]) for v in seen)
        lines.append(
            f"| {name} | {wanted} | " + " | ".join(cells) + f" | {'yes' if met else '**no**'} |"
        )
    return lines


def _commit() -> str:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return found.stdout.strip()


def write_report(
    path: Path,
    *,
    versions: dict[str, str],
    memory: dict[str, dict[str, float]],
    load: dict[str, Any],
    kit: dict[str, Any] | None,
    seconds_per_point: float,
    total_seconds: float,
    rounds: int = 1,
) -> None:
    rows = _target_rows(memory, load)
    notes = ""
    if path.exists() and NOTES_MARKER in path.read_text(encoding="utf-8"):
        notes = path.read_text(encoding="utf-8").split(NOTES_MARKER, 1)[1]
    lines = [
        "# Benchmark: the sandbox against Prism and a bare-Flask floor",
        "",
        "Written by `python bench/run.py` (see README, Performance). One run, one machine,",
        f"the same wrk load for every server, {seconds_per_point:g} s per point after a 1 s",
        "warm-up, servers taking turns; the analyze points at c=8 (the ones the targets",
        f"read) are the median of {rounds} rounds. The whole run took "
        f"{total_seconds / 60:.1f} minutes. All traffic on 127.0.0.1; wrk shares the cores.",
        "",
        "## Machine and versions",
        "",
        "| | |",
        "|---|---|",
        *[f"| {name} | {value} |" for name, value in versions.items()],
        "",
        "Servers: **sandbox** = `quimbi-sandbox serve` as the Docker image starts it (default",
        "settings: one process, the app on the server's event loop, in-memory store, the access",
        "log on, written to a file as Prism's default log is) with",
        f"`--rate-limit {HIGH_LIMIT}`: everything on (auth, validation, rate-limit",
        "bookkeeping, faults, journal, personas, access log), the limit just too high to hit;",
        "**sandbox (limit off)** = the same with `--rate-limit off` (the headers are still",
        "sent); **prism (quiet)** = `prism mock openapi.yaml --verboseLevel silent`; **prism",
        "(default log)** = `prism mock openapi.yaml` logging to a file; **sandbox (redis)**",
        "and **sandbox (redis, 2 workers)** = **sandbox** with `--store redis://...` on a",
        "throwaway local redis-server (one process; `--workers 2`); **sandbox (redis, 2",
        "replicas + nginx)** = docker-compose.yml's layout on loopback: two such processes",
        "(each its own port, one Redis database) behind one nginx port (Debian's nginx,",
        "docker/nginx.conf's proxy settings, `worker_processes auto`, round-robin over",
        "kept-alive upstream connections, its access log to a file); **floor** =",
        "`bench/floor_app.py`, a bare Flask app returning a fixed 849-byte body on the same",
        "server the sandbox runs on (`sandbox.server.serve`, default settings). The targets",
        "are checked against **sandbox**.",
        "",
        "## Targets",
        "",
        *_targets(rows),
        "",
        "This run and the two full runs before it (`bench/history.jsonl`, one line per run):",
        "",
        *_history(path, rows),
        "",
        "## Start-up and memory",
        "",
        "Start-up: process start to the first `200` on analyze, the median of 5 starts, the",
        "sandbox's modules compiled first as pip compiles them on install (the Docker image).",
        "RSS and PSS: the whole process",
        "tree (the sandbox and the floor are one process each; Prism is node), idle 1 s after",
        "start-up, then after 100,000 orders ingested in batches of 10 (unique ids, 5,000",
        "customers) on one connection.",
        "",
        "| Server | Start-up (s) | RSS idle (MB) | PSS idle (MB) | RSS after 100k orders (MB) "
        "| PSS after (MB) | RSS growth per order (B) |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {name} | {m['startup_s']:.2f} | {m['rss_idle_mb']:.1f} | {m['pss_idle_mb']:.1f} "
            f"| {m['rss_after_mb']:.1f} | {m['pss_after_mb']:.1f} "
            f"| {m['growth_bytes_per_order']:,.0f} |"
            for name, m in memory.items()
        ],
        "",
        "## Throughput and latency",
        "",
    ]
    titles = {
        "analyze_magic": "analyze, magic customer (`test_customer_high_ltv`, same body)",
        "analyze_random": "analyze, random generated customers (ids from a million)",
        "message": "generation/message (the contract's example body)",
        "ingest_orders": "ingest_orders, batches of 10 unique orders",
    }
    for scenario, per_server in load.items():
        lines += [f"### {titles[scenario]}", "", *_load_table(per_server), ""]
    if kit is not None:
        lines += [
            "## Contract kit",
            "",
            "`quimbi-contract --base-url ... --api-key qpk_test_sandbox --second-api-key",
            "qpk_test_acme --seed 1` (default profile) against a fresh local sandbox started with",
            f"`--rate-limit {HIGH_LIMIT}`: **{kit['seconds']:.0f} s**, exit code "
            f"{kit['exit_code']} (target: under 2 minutes). Its last lines:",
            "",
            "```",
            *kit["tail"],
            "```",
            "",
        ]
    lines.append(NOTES_MARKER)
    path.write_text("\n".join(lines) + (notes if notes else "\n"), encoding="utf-8")


SOAK_BEGIN = "<!-- soak: written by bench/soak.py; bench/run.py keeps it with the notes -->"
SOAK_END = "<!-- end of soak -->"


def write_soak_section(path: Path, section: list[str]) -> None:
    """Put ``section`` first after the notes marker, replacing the previous soak's."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    head, marker, notes = text.partition(NOTES_MARKER)
    if not marker:
        head, notes = text.rstrip("\n") + ("\n\n" if text.strip() else ""), ""
    if SOAK_BEGIN in notes and SOAK_END in notes:
        before, _, rest = notes.partition(SOAK_BEGIN)
        notes = before + rest.partition(SOAK_END)[2]
    block = "\n".join([SOAK_BEGIN, "", *section, SOAK_END])
    path.write_text(
        f"{head}{NOTES_MARKER}\n\n{block}\n\n{notes.lstrip(chr(10))}".rstrip("\n") + "\n",
        encoding="utf-8",
    )
