"""The Redis store against the memory store: analyze at 8 connections, magic and random
customers, taking turns, several rounds; medians.

    python bench/redis_speed.py                    # 3 rounds of 5 s per point, ~2 minutes
    python bench/redis_speed.py --rounds 5 --workers

Servers: the sandbox with the memory store; with `--store redis://` on a throwaway local
redis-server (one process); with `--workers`, also two workers on Redis; with
`--replicas`, also docker-compose.yml's layout (two processes behind nginx). All with the
rate limit too high to hit, so every request is still counted. A quicker, repeatable
piece of `bench/run.py` (which has the same rows) for working on the Redis path; on a
shared machine read the medians, not one round. Never run by the tests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    ANALYZE_PATH,
    RedisServer,
    Replicas,
    Server,
    ensure_nginx,
    ensure_wrk,
    free_port,
    run_wrk,
)
from report import HIGH_LIMIT  # noqa: E402

SCENARIOS = ("analyze_magic", "analyze_random")


def sandbox(name: str, *extra: str) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "sandbox", "serve", "--port", str(port)]
    return Server(name, [*command, "--rate-limit", HIGH_LIMIT, *extra], port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", action="store_true", help="also Redis with --workers 2")
    parser.add_argument("--replicas", action="store_true", help="also 2 replicas behind nginx")
    args = parser.parse_args()
    ensure_wrk()
    if args.replicas:
        ensure_nginx()
    redis_server = RedisServer().start()
    servers: list[Server | Replicas] = [
        sandbox("memory"),
        sandbox("redis", "--store", redis_server.url(0)),
    ]
    if args.workers:
        servers.append(
            sandbox("redis, 2 workers", "--store", redis_server.url(1), "--workers", "2")
        )
    if args.replicas:
        replicas = [sandbox(f"replica-{n}", "--store", redis_server.url(2)) for n in (1, 2)]
        servers.append(Replicas("2 replicas+nginx", replicas))
    runs: dict[tuple[str, str], list] = {}
    try:
        for server in servers:
            server.start()
            for scenario in SCENARIOS:
                run_wrk(server.port, scenario, ANALYZE_PATH, 8, 1, f"warm{server.port}")
        for round_no in range(args.rounds):
            for scenario in SCENARIOS:
                order = servers if round_no % 2 == 0 else list(reversed(servers))
                for server in order:
                    tag = f"{scenario}{round_no}{server.port}"
                    result = run_wrk(server.port, scenario, ANALYZE_PATH, 8, args.seconds, tag)
                    runs.setdefault((scenario, server.name), []).append(result)
                    print(
                        f"  round {round_no + 1} {scenario:15} {server.name:17} "
                        f"{result.rps:7.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                        f"p99 {result.p99_ms:6.2f} ms  non-2xx {result.non_2xx}",
                        flush=True,
                    )
    finally:
        for server in servers:
            server.stop()
        redis_server.stop()
    print("Medians (c=8):")
    for scenario in SCENARIOS:
        memory = statistics.median(r.rps for r in runs[(scenario, "memory")])
        for server in servers:
            results = runs[(scenario, server.name)]
            rps = statistics.median(r.rps for r in results)
            print(
                f"  {scenario:15} {server.name:17} {rps:7.0f} req/s "
                f"({rps / memory * 100:3.0f} % of memory)  "
                f"p50 {statistics.median(r.p50_ms for r in results):6.2f} ms  "
                f"p99 {statistics.median(r.p99_ms for r in results):6.2f} ms"
            )


if __name__ == "__main__":
    main()
