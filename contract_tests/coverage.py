"""What a client's tests never tried: the sandbox's coverage report, read and shown.

``quimbi-contract coverage`` (CI: "our tests exercise every documented error of the calls
we make") and the pytest plugin's end-of-session summary both use this module. The
sandbox counts (``GET /_sandbox/coverage``); this module merges reports of several
sandboxes, prints the table and decides a --fail-under threshold.

Exit status of ``quimbi-contract coverage``: 0 at or above the threshold, 1 below it,
2 bad usage or the sandbox could not be asked.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests

from sandbox.coverage import summarise


def fetch(
    base_url: str,
    operations: Iterable[str] | None = None,
    tenant: str | None = None,
    session: Any = requests,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    params = {}
    if operations:
        params["operations"] = ",".join(operations)
    if tenant:
        params["tenant"] = tenant
    response = session.get(
        base_url.rstrip("/") + "/_sandbox/coverage", params=params, headers=headers, timeout=10
    )
    if response.status_code != 200:
        raise RuntimeError(
            f"GET /_sandbox/coverage answered {response.status_code}: {response.text[:300]}"
        )
    return response.json()


def merge(reports: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One report summing several (the fixture starts one sandbox per test)."""
    ops: dict[str, dict[str, Any]] = {}
    for report in reports:
        for name, found in report.get("operations", {}).items():
            into = ops.setdefault(
                name,
                {"calls": 0, "answers": {}, "undocumented": {}, "faults": {}, "behaviour": {}},
            )
            into["calls"] += found.get("calls", 0)
            for bucket in ("answers", "undocumented", "faults", "behaviour"):
                for answer, count in found.get(bucket, {}).items():
                    into[bucket][answer] = into[bucket].get(answer, 0) + count
    return summarise(ops)


def format_table(report: dict[str, Any]) -> str:
    ops = report["operations"]
    width = max([len("operation"), *(len(name) for name in ops)])
    lines = [
        f"Quimbi sandbox coverage: {report['served_answers']} of {report['documented_answers']}"
        f" documented answers served ({report['percent']:g}%)",
        f"{'operation':<{width}}  {'calls':>6}  {'served':>7}  not served",
    ]
    for name, found in ops.items():
        missing = [answer for answer, count in found["answers"].items() if not count]
        served = f"{found['served']}/{found['documented']}"
        rest = "never called" if not found["calls"] else ", ".join(missing) or "-"
        lines.append(f"{name:<{width}}  {found['calls']:>6}  {served:>7}  {rest}")
        extras = [f"{a} x{n}" for a, n in found["undocumented"].items() if n]
        if extras:
            lines.append(f"{'':<{width}}  undocumented answers: {', '.join(extras)}")
        faults = [f"{kind} x{n}" for kind, n in found["faults"].items() if n]
        if faults:
            lines.append(f"{'':<{width}}  faults injected: {', '.join(faults)}")
        retries = [f"{kind} x{n}" for kind, n in found.get("behaviour", {}).items() if n]
        if retries:
            lines.append(f"{'':<{width}}  retry discipline broken: {', '.join(retries)}")
    if report.get("behaviour_problems"):
        lines.append(
            f"{report['behaviour_problems']} retry-discipline problem(s): each is in"
            " GET /_sandbox/violations with the requests involved"
        )
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quimbi-contract coverage",
        description="Which documented answers of the Quimbi contract a sandbox served: what"
        " the client's tests exercised, and what they never tried.",
        epilog="exit status: 0 at or above --fail-under, 1 below it, 2 bad usage or the"
        " sandbox could not be asked",
    )
    parser.add_argument("--base-url", required=True, help="the sandbox, e.g. http://127.0.0.1:8080")
    parser.add_argument(
        "--operations",
        nargs="+",
        metavar="OPERATION_ID",
        help="only these operations (the calls your client makes); default all",
    )
    parser.add_argument("--tenant", help="only this tenant's requests (default: all)")
    parser.add_argument(
        "--fail-under",
        type=float,
        metavar="PCT",
        help="exit 1 when fewer than PCT%% of the documented answers were served",
    )
    parser.add_argument("--admin-token", help="the sandbox's --admin-token, if it has one")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    return parser


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.fail_under is not None and not 0 <= args.fail_under <= 100:
        parser.error("--fail-under must be between 0 and 100")
    operations = [name for item in args.operations or () for name in item.split(",") if name]
    headers = {"Authorization": f"Bearer {args.admin_token}"} if args.admin_token else None
    try:
        report = fetch(args.base_url, operations, args.tenant, headers=headers)
    except (requests.RequestException, RuntimeError, ValueError) as exc:
        sys.stderr.write(f"quimbi-contract coverage: {exc}\n")
        return 2
    sys.stdout.write(format_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.fail_under is not None and report["percent"] < args.fail_under:
        sys.stdout.write(
            f"FAIL: {report['percent']:g}% of documented answers served,"
            f" under --fail-under {args.fail_under:g}%\n"
        )
        return 1
    return 0
