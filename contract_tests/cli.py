"""`quimbi-contract`: check a running server against the Quimbi contract.

`quimbi-contract client --command CMD ...` verifies a client instead
(``contract_tests.client.command``); ``quimbi-contract coverage`` reads a sandbox's
coverage report (``contract_tests.coverage``).

Exit status: 0 the target conforms, 1 it does not (or a check crashed), 2 bad usage or
the target could not be reached at all, 3 no drift found but some checks inconclusive
(the target's rate limit or --max-requests stopped them). The plan and progress go to
stderr, the report to stdout.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import requests

from contract_tests import plan, runner
from contract_tests.registry import LAYERS, REGISTRY, duration
from contract_tests.target import (
    DEFAULT_HEADROOM,
    MAX_RATE_LIMIT_WAIT_SECONDS,
    REMOTE_DEFAULT_RATE,
    Options,
    Target,
    parse_rate,
)

EXIT_CODES = """exit status:
  0  the target conforms
  1  drift found (or a check crashed)
  2  bad usage, or the target could not be reached
  3  no drift found, but some checks are inconclusive: the target's rate limit (or
     --max-requests) stopped them before they finished (JUnit: <skipped>)
"""


def parse_headroom(text: str) -> float:
    """``10%``, ``10`` or ``0.1`` -> 0.1."""
    value = float(text.strip().removesuffix("%"))
    share = value / 100 if text.strip().endswith("%") or value >= 1 else value
    if not 0 <= share < 1:
        raise ValueError("headroom must be at least 0% and below 100%")
    return share


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quimbi-contract",
        description="Check a server against the Quimbi Platform API contract (openapi.yaml). "
        "To check a client instead: quimbi-contract client --help.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8080")
    parser.add_argument("--api-key", required=True, help="a key with read (and write) permission")
    parser.add_argument(
        "--second-api-key",
        help="a key of another tenant: enables the tenant-isolation check",
    )
    parser.add_argument("--junit-xml", type=Path, metavar="FILE", help="write a JUnit report")
    parser.add_argument("--seed", type=int, help="seed for generated data (default: random)")
    parser.add_argument(
        "--max-examples",
        type=int,
        default=25,
        metavar="N",
        help="generated requests per operation and mode (default 25)",
    )
    parser.add_argument(
        "--read-only", action="store_true", help="never call the ingestion endpoints"
    )
    parser.add_argument(
        "--select",
        nargs="+",
        default=[],
        metavar="NAME",
        help=f"run only these layers ({', '.join(LAYERS)}), checks, operation ids, "
        "or check:operation pairs",
    )
    parser.add_argument(
        "--rate",
        metavar="N/min",
        help="at most N requests per minute, and the pace for a target without"
        f" X-RateLimit-* headers (default {REMOTE_DEFAULT_RATE:g}/min; no bound for"
        " 127.0.0.1/localhost when the target sends the headers; 0 = unlimited)",
    )
    parser.add_argument(
        "--rate-headroom",
        default=f"{DEFAULT_HEADROOM:.0%}",
        metavar="PERCENT",
        help="share of the key's X-RateLimit-Limit left to other clients on the key"
        f" (default {DEFAULT_HEADROOM:.0%}%)",  # %% in argparse help
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        metavar="N",
        help="send at most N requests: scales --max-examples to fit, and stops there",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=MAX_RATE_LIMIT_WAIT_SECONDS,
        metavar="SECONDS",
        help="longest wait for a rate-limit window, and the most time waiting out 429s;"
        f" past it the check is inconclusive (default {MAX_RATE_LIMIT_WAIT_SECONDS:g})",
    )
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
    return parser


def list_checks() -> str:
    lines = []
    for item in REGISTRY.checks.values():
        writes = " (writes)" if item.writes else ""
        lines.append(f"{item.layer:<10} {item.name:<32} {item.description}{writes}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["client"]:  # `quimbi-contract client ...`: the client side of the kit
        from contract_tests.client import command

        return command.main(argv[1:])
    if argv[:1] == ["coverage"]:
        from contract_tests import coverage

        return coverage.main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        sys.stdout.write(list_checks())
        return 0
    if args.max_examples < 1:
        parser.error("--max-examples must be >= 1")
    if args.max_requests is not None and args.max_requests < 2:
        parser.error("--max-requests must be >= 2 (the plan's probe is one)")
    if args.max_wait < 0:
        parser.error("--max-wait must be >= 0")
    if args.rate is not None:
        try:
            parse_rate(args.rate)
        except ValueError as exc:
            parser.error(f"--rate {args.rate!r}: {exc}")
    try:
        headroom = parse_headroom(args.rate_headroom)
    except ValueError as exc:
        parser.error(f"--rate-headroom {args.rate_headroom!r}: {exc}")
    options = Options.build(
        rate=args.rate,
        base_url=args.base_url,
        api_key=args.api_key,
        second_api_key=args.second_api_key,
        seed=args.seed,
        max_examples=args.max_examples,
        read_only=args.read_only,
        select=tuple(args.select),
        rate_headroom=headroom,
        max_wait=args.max_wait,
        max_requests=args.max_requests,
    )
    pairs = runner.selected(options)
    if not pairs:
        parser.error(f"--select {' '.join(args.select)} matches no check (see --list)")
    sized_from, fits = None, True
    if options.max_requests is not None:
        sized, fits = plan.size_to(pairs, options, options.max_requests)
        if sized.max_examples != options.max_examples:
            sized_from = options.max_examples
        options = sized
    bound = f"at most {options.rate_per_minute:g}/min" if options.rate_per_minute else "no bound"
    sys.stderr.write(
        f"quimbi-contract: {options.base_url} seed {options.seed} rate {bound}"
        f"{' read-only' if options.read_only else ''}\n"
    )
    target = Target(options)
    try:
        window, probe_error = plan.probe(target)
    except requests.RequestException as exc:
        sys.stderr.write(f"quimbi-contract: cannot reach {options.base_url}: {exc}\n")
        return 2
    the_plan = plan.Plan(
        plan.estimate(pairs, options), len(pairs), options, window, probe_error, sized_from, fits
    )
    sys.stderr.write(the_plan.describe())
    started = time.monotonic()

    def eta() -> float:
        return the_plan.eta(target.session.sent, time.monotonic() - started)

    def waiting(seconds: float, why: str) -> None:
        if seconds >= 2:
            sys.stderr.write(
                f"quimbi-contract: waiting {duration(seconds)} for the target's rate limit"
                f" ({why}); ETA {duration(eta() + seconds)}\n"
            )

    target.session.pacer.on_wait = waiting
    results, target = runner.run(options, progress=runner.progress_printer(eta=eta), target=target)
    sys.stdout.write(
        runner.format_report(results, options, target.session.sent, target.session.waited)
    )
    if args.junit_xml:
        runner.write_junit(results, args.junit_xml, options)
    return runner.exit_code(results)


if __name__ == "__main__":
    raise SystemExit(main())
