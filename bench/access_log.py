"""What the access log costs: analyze (magic customer) at 8 connections, log off vs on.

    python bench/access_log.py                 # 3 rounds of 10 s per variant, ~2 minutes
    python bench/access_log.py --rounds 5 --seconds 5

Variants, taking turns within each round (the order flips every round): the access log
off (`--no-access-log`); on, stdout to a file (as `bench/run.py` runs the sandbox, and
as `quimbi-sandbox serve > sandbox.log` would); on, stdout to a pipe whose reader
throws the lines away (what a container's log collector does). Prints req/s, p99 and
the sandbox's CPU time per request (which busy neighbours on a shared machine disturb
less than req/s) per run, and the medians per variant. Never run by the tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Server, _tree, ensure_wrk, free_port, run_wrk  # noqa: E402
from report import HIGH_LIMIT  # noqa: E402

PATH = "/api/intelligence/analyze"
SCENARIO = "analyze_magic"


def variants() -> list[Server]:
    servers = []
    for name, extra, piped in (
        ("off", ["--no-access-log"], False),
        ("on, file", [], False),
        ("on, pipe", [], True),
    ):
        port = free_port()
        command = [sys.executable, "-m", "sandbox", "serve", "--port", str(port)]
        command += ["--rate-limit", HIGH_LIMIT, *extra]
        if piped:  # sh runs the sandbox into `cat`, which discards what it reads
            command = ["sh", "-c", '"$@" | cat > /dev/null', "sh", *command]
        servers.append(Server(name, command, port))
    return servers


def cpu_seconds(server: Server) -> float:
    """User + system CPU time of the sandbox's processes (not sh, not cat)."""
    assert server.process is not None
    total = 0
    for pid in _tree(server.process.pid):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if "sandbox" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    ensure_wrk()
    servers = variants()
    rps: dict[str, list[float]] = {s.name: [] for s in servers}
    p99: dict[str, list[float]] = {s.name: [] for s in servers}
    cpu: dict[str, list[float]] = {s.name: [] for s in servers}
    try:
        for server in servers:
            server.start()
            run_wrk(server.port, SCENARIO, PATH, 8, 2, f"warm{server.port}")
        for round_number in range(args.rounds):
            order = servers if round_number % 2 == 0 else list(reversed(servers))
            for server in order:
                tag = f"r{round_number}{server.port}"
                before = cpu_seconds(server)
                result = run_wrk(server.port, SCENARIO, PATH, 8, args.seconds, tag)
                cpu_us = (cpu_seconds(server) - before) / result.requests * 1e6
                rps[server.name].append(result.rps)
                p99[server.name].append(result.p99_ms)
                cpu[server.name].append(cpu_us)
                print(
                    f"  round {round_number + 1} {server.name:9} {result.rps:7.0f} req/s"
                    f"  p99 {result.p99_ms:5.2f} ms  cpu {cpu_us:5.1f} us/request"
                    f"  non-2xx {result.non_2xx}",
                    flush=True,
                )
    finally:
        for server in servers:
            server.stop()
    print("median over rounds:")
    for name in rps:
        print(
            f"  {name:9} {statistics.median(rps[name]):7.0f} req/s"
            f"  p99 {statistics.median(p99[name]):5.2f} ms"
            f"  cpu {statistics.median(cpu[name]):5.1f} us/request"
        )
    for server in servers:
        if server.log is not None:
            print(f"  {server.name}: {server.log.stat().st_size / 1e6:.1f} MB of output")
            server.log.unlink()


if __name__ == "__main__":
    main()
