"""The sandbox against Prism and a bare-Flask floor, on the same machine and the same load.

    python bench/run.py                # about 8 minutes; writes bench/RESULTS.md
    python bench/run.py --seconds 2 --skip-kit --out /tmp/quick.md

Installs what it needs (wrk and nginx from Debian when absent; Prism from npm into a
temp dir), starts every server on 127.0.0.1, measures start-up to the first 200 and RSS
(idle and after 100,000 ingested orders), then drives each scenario at concurrency 1, 8 and 32
with wrk, the servers taking turns (the order flips at each point; the analyze points at
c=8, which the targets read, are the median of --rounds rounds), and finally times
the contract kit's default profile against a fresh sandbox. Never run by the tests.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402  (bench/ is a directory of scripts, not a package)
    ROOT,
    LoadResult,
    RedisServer,
    Replicas,
    Server,
    ensure_nginx,
    ensure_wrk,
    free_port,
    install_prism,
    order,
    run_wrk,
    tool_version,
)
from report import HIGH_LIMIT, REDIS, REDIS_REPLICAS, REDIS_WORKERS, write_report  # noqa: E402

SCENARIOS = {
    "analyze_magic": "/api/intelligence/analyze",
    "analyze_random": "/api/intelligence/analyze",
    "message": "/api/generation/message",
    "ingest_orders": "/api/data/ingest_orders",
}
CONCURRENCY = (1, 8, 32)
INGESTED_ORDERS = 100_000


def sandbox(name: str, rate_limit: str, *extra: str) -> Server:
    port = free_port()
    # As the Docker image starts it (`quimbi-sandbox serve`, default settings), on loopback;
    # so the access log is on, its lines going to the server's log file.
    command = [sys.executable, "-m", "sandbox", "serve", "--port", str(port)]
    return Server(name, [*command, "--rate-limit", rate_limit, *extra], port)


def prism(name: str, binary: Path, level: str | None) -> Server:
    port = free_port()
    command = [str(binary), "mock", "-h", "127.0.0.1", "-p", str(port), "openapi.yaml"]
    return Server(name, command + (["--verboseLevel", level] if level else []), port)


def floor() -> Server:
    port = free_port()
    return Server("floor", [sys.executable, "bench/floor_app.py", str(port)], port)


def ingest_orders(server: Server, count: int) -> float:
    """``count`` unique orders in batches of 10 over one keep-alive connection; seconds."""
    import http.client

    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"Content-Type": "application/json", "X-API-Key": "qpk_test_sandbox"}
    try:
        for batch in range(count // 10):
            orders = [
                order(f"mem_cust_{(batch * 10 + i) % 5000}", f"mem_{batch}_{i}") for i in range(10)
            ]
            body = json.dumps({"source": "shopify", "orders": orders})
            conn.request("POST", "/api/data/ingest_orders", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{server.name}: ingest answered {response.status}")
    finally:
        conn.close()
    return time.perf_counter() - started


# Start-up is the median of this many starts: one start on a shared host is a draw.
STARTS = 5


def start_up_seconds(server: Server, starts: int) -> float:
    """The median time to the first 200 over ``starts`` starts (the last one is kept
    running, for the memory figures)."""
    seconds = []
    for n in range(starts):
        server.start()
        assert server.startup_seconds is not None
        seconds.append(server.startup_seconds)
        if n < starts - 1:
            server.stop()
    return statistics.median(seconds)


def measure_memory(servers: list[Server]) -> dict[str, dict[str, float]]:
    """Start-up and RSS, one server at a time so nothing else competes for the cores.
    The sandbox's modules are compiled first, as pip does when it installs the wheel (the
    Docker image): a checkout without __pycache__ (PYTHONDONTWRITEBYTECODE) would
    otherwise compile its source on every start."""
    compileall.compile_dir(ROOT / "sandbox", quiet=1)
    figures: dict[str, dict[str, float]] = {}
    for server in servers:
        startup = start_up_seconds(server, STARTS)
        try:
            time.sleep(1.0)
            idle, idle_pss = server.memory_bytes()
            seconds = ingest_orders(server, INGESTED_ORDERS)
            time.sleep(0.5)
            after, after_pss = server.memory_bytes()
        finally:
            server.stop()
        figures[server.name] = {
            "startup_s": startup,
            "rss_idle_mb": idle / 2**20,
            "rss_after_mb": after / 2**20,
            "pss_idle_mb": idle_pss / 2**20,
            "pss_after_mb": after_pss / 2**20,
            "growth_bytes_per_order": (after - idle) / INGESTED_ORDERS,
            "ingest_s": seconds,
        }
        print(f"  {server.name}: {json.dumps(figures[server.name])}", flush=True)
    return figures


# The points the targets read: each is the median of several rounds, so one slow phase
# of a shared host during a 5 s point cannot decide a target.
TARGET_POINTS = {("analyze_magic", 8), ("analyze_random", 8)}


def measure_load(
    servers: list[Server | Replicas],
    plan: dict[str, list[str]],
    seconds: float,
    rounds: int = 3,
) -> dict[str, dict[str, dict[int, LoadResult]]]:
    """results[scenario][server][connections]; servers take turns at every point (the
    order flipping each time); a target point is the run with the median rate of
    ``rounds``."""
    results: dict[str, dict[str, dict[int, LoadResult]]] = {}
    flip = False
    for scenario, path in SCENARIOS.items():
        taking_part = [s for s in servers if s.name in plan[scenario]]
        for server in taking_part:  # warm-up: caches, JIT, connection pools
            run_wrk(server.port, scenario, path, 8, 1, f"warm{server.port}")
        for connections in CONCURRENCY:
            repeats = rounds if (scenario, connections) in TARGET_POINTS else 1
            runs: dict[str, list[LoadResult]] = {}
            for round_number in range(repeats):
                order = list(reversed(taking_part)) if flip else taking_part
                flip = not flip
                for server in order:
                    tag = f"{scenario}{connections}{server.port}r{round_number}"
                    result = run_wrk(server.port, scenario, path, connections, seconds, tag)
                    runs.setdefault(server.name, []).append(result)
                    print(
                        f"  {scenario:15} c={connections:<3} {server.name:22} "
                        f"{result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                        f"p99 {result.p99_ms:6.2f} ms  non-2xx {result.non_2xx}",
                        flush=True,
                    )
            for name, measured in runs.items():
                median = sorted(measured, key=lambda r: r.rps)[len(measured) // 2]
                results.setdefault(scenario, {}).setdefault(name, {})[connections] = median
    return results


def time_contract_kit() -> dict[str, object]:
    server = sandbox("sandbox-kit", HIGH_LIMIT).start()
    try:
        started = time.perf_counter()
        kit = Path(sys.executable).with_name("quimbi-contract")
        completed = subprocess.run(
            [str(kit), "--base-url", f"http://127.0.0.1:{server.port}",
             "--api-key", "qpk_test_sandbox", "--second-api-key", "qpk_test_acme", "--seed", "1"],
            capture_output=True, text=True, timeout=900, cwd=ROOT,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    finally:
        server.stop()
    tail = (completed.stdout + completed.stderr).strip().splitlines()[-3:]
    return {"seconds": seconds, "exit_code": completed.returncode, "tail": tail}


def versions(prism_binary: Path, wrk_version: str, nginx_version: str) -> dict[str, str]:
    def dist(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
             if line.startswith("model name")), "unknown",
        )  # fmt: skip
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "quimbi-sandbox": dist("quimbi-sandbox"),
        "flask": dist("flask"),
        "werkzeug": dist("werkzeug"),
        "httptools": dist("httptools"),
        "jsonschema-rs": dist("jsonschema-rs"),
        "node": tool_version(["node", "--version"]),
        "prism": tool_version([str(prism_binary), "--version"]),
        "wrk": wrk_version,
        "nginx": nginx_version,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each load point")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--prism", default="@stoplight/prism-cli@5", help="npm package spec")
    parser.add_argument("--prism-dir", type=Path, help="reuse this npm prefix for Prism")
    parser.add_argument("--skip-kit", action="store_true", help="don't time the contract kit")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of each target point (analyze, c=8)"
    )
    args = parser.parse_args()
    if not 1 <= args.seconds <= 30:
        parser.error("--seconds must be 1..30")
    started = time.perf_counter()

    wrk_version = ensure_wrk()
    nginx_version = ensure_nginx()
    prism_dir = args.prism_dir or Path(tempfile.mkdtemp(prefix="bench-prism-"))
    print(f"Installing {args.prism} into {prism_dir} ...", flush=True)
    prism_binary = install_prism(args.prism, prism_dir)

    print("Start-up and memory (one server at a time) ...", flush=True)
    memory = measure_memory(
        [sandbox("sandbox", HIGH_LIMIT), prism("prism (quiet)", prism_binary, "silent"), floor()]
    )

    print(f"Load, {args.seconds:g} s per point ...", flush=True)
    redis_server = RedisServer()
    servers = [
        sandbox("sandbox", HIGH_LIMIT),
        sandbox("sandbox (limit off)", "off"),
        # The scale-out store: one process, and two workers on one socket (each its own DB).
        sandbox(REDIS, HIGH_LIMIT, "--store", redis_server.url(0)),
        sandbox(REDIS_WORKERS, HIGH_LIMIT, "--store", redis_server.url(1), "--workers", "2"),
        # docker-compose.yml's layout: two replicas on one database, nginx in front.
        Replicas(
            REDIS_REPLICAS,
            [sandbox(f"replica-{n}", HIGH_LIMIT, "--store", redis_server.url(2)) for n in (1, 2)],
        ),
        prism("prism (quiet)", prism_binary, "silent"),
        prism("prism (default log)", prism_binary, None),
        floor(),
    ]
    analyze_servers = [s.name for s in servers]
    plan = {
        "analyze_magic": analyze_servers,
        "analyze_random": [
            "sandbox",
            REDIS,
            REDIS_WORKERS,
            REDIS_REPLICAS,
            "prism (quiet)",
            "prism (default log)",
        ],
        "message": ["sandbox", "prism (quiet)"],
        "ingest_orders": ["sandbox", "prism (quiet)"],
    }
    try:
        redis_server.start()
        for server in servers:
            server.start()
        load = measure_load(servers, plan, args.seconds, args.rounds)
    finally:
        for server in servers:
            server.stop()
        redis_server.stop()

    kit = None
    if not args.skip_kit:
        print("Contract kit, default profile ...", flush=True)
        kit = time_contract_kit()
        print(f"  {kit['seconds']:.1f} s, exit {kit['exit_code']}", flush=True)

    write_report(
        args.out,
        versions=versions(prism_binary, wrk_version, nginx_version),
        memory=memory,
        load=load,
        kit=kit,
        seconds_per_point=args.seconds,
        rounds=args.rounds,
        total_seconds=time.perf_counter() - started,
    )
    print(f"Wrote {args.out} ({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
