"""What the validating proxy costs: analyze (magic customer) at 8 connections, called
directly on an upstream sandbox, through `quimbi-sandbox proxy`, through a bare forwarder
(bench/floor_proxy.py: the extra hop and nothing else), and through `prism proxy`.

    python bench/proxy.py                      # 3 rounds of 10 s per path, twice: ~4 minutes
    python bench/proxy.py --rounds 5 --seconds 5 --prism-dir /tmp/prism

Two setups, one after the other (``--upstream-latency 0,5``): an upstream that answers at
once (the worst case for the proxy: upstream, proxy and wrk all compete for the same two
cores, so the proxied path has half the CPU per request the direct one has), and one 5 ms
away (every answer held 5 ms by the upstream's own ``--latency``: staging across a
network, the proxy's real use). In each, one upstream (`quimbi-sandbox serve`, a rate
limit too high to hit) serves all four paths; the three proxies forward to it, the paths
taking turns within each round (the order flips every round). Ours and Prism validate the
request and the response against openapi.yaml; ours also journals the exchange and
prints its access line (to a file). Prints req/s, p50 and p99 per run, then the medians
and the proxy's overhead against the direct path: p50 added and the share of the direct
throughput. Never run by the tests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Server, ensure_wrk, free_port, install_prism, run_wrk  # noqa: E402
from report import HIGH_LIMIT  # noqa: E402

PATH = "/api/intelligence/analyze"
SCENARIO = "analyze_magic"
PRISM = "@stoplight/prism-cli@5"


def sandbox(name: str, *args: str) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "sandbox", *args, "--port", str(port)]
    return Server(name, [*command, "--rate-limit", HIGH_LIMIT], port)


def measure(latency_ms: float, args: argparse.Namespace, prism_binary: Path) -> None:
    """Rounds of the three paths on one upstream ``latency_ms`` away; prints the medians."""
    held = ["--latency", f"{latency_ms:g}"] if latency_ms else []
    upstream = sandbox("direct", "serve", *held).start()
    port = free_port()
    upstream_url = f"http://127.0.0.1:{upstream.port}"
    floor_port = free_port()
    paths = [
        upstream,
        sandbox("sandbox proxy", "proxy", "--upstream", upstream_url),
        Server(
            "bare forwarder",
            [sys.executable, "bench/floor_proxy.py", str(floor_port), upstream_url],
            floor_port,
        ),
        Server(
            "prism proxy",
            [
                str(prism_binary),
                "proxy",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "openapi.yaml",
                upstream_url,
                "--errors",
                "false",
            ],
            port,
        ),
    ]
    runs: dict[str, list] = {path.name: [] for path in paths}
    print(f"upstream {latency_ms:g} ms away:", flush=True)
    try:
        for path in paths[1:]:
            path.start()
        for path in paths:
            run_wrk(path.port, SCENARIO, PATH, 8, 2, f"warm{path.port}")
        for round_number in range(args.rounds):
            order = paths if round_number % 2 == 0 else list(reversed(paths))
            for path in order:
                result = run_wrk(path.port, SCENARIO, PATH, 8, args.seconds, f"r{round_number}")
                runs[path.name].append(result)
                print(
                    f"  round {round_number + 1} {path.name:14} {result.rps:7.0f} req/s"
                    f"  p50 {result.p50_ms:5.2f} ms  p99 {result.p99_ms:6.2f} ms"
                    f"  non-2xx {result.non_2xx}",
                    flush=True,
                )
    finally:
        for path in paths:
            path.stop()
    medians = {
        name: (
            statistics.median(r.rps for r in results),
            statistics.median(r.p50_ms for r in results),
            statistics.median(r.p99_ms for r in results),
        )
        for name, results in runs.items()
    }
    direct_rps, direct_p50, _ = medians["direct"]
    print(f"median over rounds (analyze, c=8, upstream {latency_ms:g} ms away):")
    for name, (rps, p50, p99) in medians.items():
        line = f"  {name:14} {rps:7.0f} req/s  p50 {p50:5.2f} ms  p99 {p99:6.2f} ms"
        if name != "direct":
            line += f"  | {rps / direct_rps:4.0%} of direct, p50 +{p50 - direct_p50:.2f} ms"
        print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--upstream-latency",
        default="0,5",
        help="comma-separated: how far away the upstream is, in ms (its --latency)",
    )
    parser.add_argument("--prism", default=PRISM, help="the npm package spec of Prism")
    parser.add_argument("--prism-dir", type=Path, help="reuse this npm prefix for Prism")
    args = parser.parse_args()
    ensure_wrk()
    prism_binary = install_prism(args.prism, args.prism_dir or Path("/tmp/quimbi-bench-prism"))
    for latency in args.upstream_latency.split(","):
        measure(float(latency), args, prism_binary)


if __name__ == "__main__":
    main()
