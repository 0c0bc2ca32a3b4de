"""`quimbi-contract`: check a running server against the Quimbi contract.

`quimbi-contract client --command CMD ...` verifies a client instead
(``contract_tests.client.command``).

Exit status: 0 the target conforms, 1 it does not (or a check crashed), 2 bad usage or
the target could not be reached at all. Progress goes to stderr, the report to stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import requests

from contract_tests import runner
from contract_tests.registry import LAYERS, REGISTRY
from contract_tests.target import REMOTE_DEFAULT_RATE, Options, parse_rate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quimbi-contract",
        description="Check a server against the Quimbi Platform API contract (openapi.yaml).",
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
        help=f"at most N requests per minute (default {REMOTE_DEFAULT_RATE:g}/min for a remote"
        " target, unlimited for 127.0.0.1/localhost; 0 = unlimited)",
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
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        sys.stdout.write(list_checks())
        return 0
    if args.max_examples < 1:
        parser.error("--max-examples must be >= 1")
    if args.rate is not None:
        try:
            parse_rate(args.rate)
        except ValueError as exc:
            parser.error(f"--rate {args.rate!r}: {exc}")
    options = Options.build(
        rate=args.rate,
        base_url=args.base_url,
        api_key=args.api_key,
        second_api_key=args.second_api_key,
        seed=args.seed,
        max_examples=args.max_examples,
        read_only=args.read_only,
        select=tuple(args.select),
    )
    if not runner.selected(options):
        parser.error(f"--select {' '.join(args.select)} matches no check (see --list)")
    try:
        requests.get(options.base_url, timeout=10)
    except requests.RequestException as exc:
        sys.stderr.write(f"quimbi-contract: cannot reach {options.base_url}: {exc}\n")
        return 2
    rate = f"{options.rate_per_minute:g}/min" if options.rate_per_minute else "unlimited"
    sys.stderr.write(
        f"quimbi-contract: {options.base_url} seed {options.seed} rate {rate}"
        f"{' read-only' if options.read_only else ''}\n"
    )
    results, target = runner.run(options, progress=runner.progress_printer())
    sys.stdout.write(
        runner.format_report(results, options, target.session.sent, target.session.waited)
    )
    if args.junit_xml:
        runner.write_junit(results, args.junit_xml, options)
    return 1 if any(r.outcome in (runner.FAILED, runner.ERROR) for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
