"""`quimbi-sandbox serve|proxy|healthcheck ...`: flags built from Settings (each an env var)."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import sys
from collections.abc import Sequence
from typing import Any

from sandbox import __version__
from sandbox.auth import KeyFileError
from sandbox.config import ENV_PREFIX, ConfigError, Settings
from sandbox.healthcheck import health_url, probe

COMMANDS = ("serve", "proxy", "healthcheck")
# The only settings a health check needs: where the server listens.
_HEALTHCHECK_SETTINGS = ("host", "port")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quimbi-sandbox",
        description="A deterministic sandbox of the Quimbi Platform API.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="Serve the sandbox (the default command).",
        description="Serve the sandbox. Every flag can also be set by the environment "
        f"variable shown ({ENV_PREFIX}<NAME>); a flag wins over the variable.",
    )
    _add_setting_flags(serve, Settings.option_fields("serve"))
    proxy = commands.add_parser(
        "proxy",
        help="Forward /api/ to --upstream URL, checking both sides against the contract.",
        description="Forward every /api/ request to the platform at --upstream and its "
        "answer back, judging both against openapi.yaml in the journal "
        "(/_sandbox/violations?side=request|response). Takes serve's flags too; every "
        f"flag can also be set by its environment variable ({ENV_PREFIX}<NAME>).",
    )
    _add_setting_flags(proxy, Settings.option_fields("proxy"))
    healthcheck = commands.add_parser(
        "healthcheck",
        help="Exit 0 if the sandbox these settings describe answers its health check, else 1.",
        description="Ask the sandbox that `serve` would start with the same settings "
        f"(host and port, from flags or {ENV_PREFIX}HOST / {ENV_PREFIX}PORT) for "
        "/_sandbox/health. Exits 0 when it answers 200 with status ok, 1 otherwise. "
        "A wildcard host (0.0.0.0, ::) is reached on the loopback. The Docker image's "
        "HEALTHCHECK runs this.",
    )
    _add_setting_flags(
        healthcheck,
        [option for option in Settings.option_fields() if option.name in _HEALTHCHECK_SETTINGS],
    )
    return parser


def _add_setting_flags(
    parser: argparse.ArgumentParser, options: Sequence[dataclasses.Field[Any]]
) -> None:
    for option in options:
        flag = "--" + option.name.replace("_", "-")
        env = ENV_PREFIX + option.name.upper()
        shown_default = option.default if option.default is not None else "none"
        help_text = f"{option.metadata['help']} [env {env}; default {shown_default}]"
        if isinstance(option.default, bool):
            parser.add_argument(
                flag,
                dest=option.name,
                default=None,
                action=argparse.BooleanOptionalAction,
                help=help_text,
            )
            continue
        parser.add_argument(
            flag,
            dest=option.name,
            default=None,
            metavar=option.metadata.get("metavar") or option.name.upper(),
            help=help_text,
        )


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (
        args_list[0] not in COMMANDS and args_list[0] not in {"-h", "--help", "--version"}
    ):
        args_list.insert(0, "serve")
    args = build_parser().parse_args(args_list)
    overrides = {
        option.name: getattr(args, option.name)
        for option in Settings.option_fields()
        if hasattr(args, option.name)
    }
    if args.command == "healthcheck":
        gc.enable()  # `python -m sandbox` turned it off for serve (sandbox/__main__.py)
        return _healthcheck(overrides)
    return _serve(overrides, args.command)


def _serve(overrides: dict[str, Any], command: str) -> int:
    # Start-up makes ~95,000 objects that live as long as the process (modules, the
    # contract, fixtures, the app), and every collection meanwhile rescanned them for
    # nothing: 40-100 ms of each start (bench/startup.py). So the collector is off
    # until the sandbox is built, and then all of it is frozen out of later collections,
    # uncollected, as the gc docs advise before forking workers: the garbage among it
    # (~1,900 objects, ~0.4 MB, measured) is not worth the 40-50 ms a full collection
    # over the rest takes. The server collects and freezes what comes after. `python -m
    # sandbox` turns the collector off before this module is even imported.
    gc.disable()
    try:
        from sandbox.fault_rules import FaultRuleError  # imported late, like the app

        try:
            settings = Settings.from_sources(os.environ, overrides)
            # A setting of the other command left in the environment is not this one's.
            if command == "serve":
                settings = settings.replace(upstream=None, record=None)
            else:
                settings = settings.replace(replay=None)
                if settings.upstream is None:
                    raise ConfigError(f"proxy needs --upstream URL (or {ENV_PREFIX}UPSTREAM)")
            from sandbox.app import create_app  # imported late: --help stays fast

            app = create_app(settings)
        except (ConfigError, KeyFileError, FaultRuleError) as exc:
            print(f"quimbi-sandbox: {exc}", file=sys.stderr)
            return 2
        from sandbox.accesslog import banner
        from sandbox.docs import DEFAULT_KEY
        from sandbox.healthcheck import base_url
        from sandbox.server import serve
    finally:
        gc.freeze()
        gc.enable()
    print(
        banner(settings, __version__, base_url(settings), DEFAULT_KEY), file=sys.stderr, flush=True
    )
    serve(app, settings)
    return 0


def _healthcheck(overrides: dict[str, Any]) -> int:
    # Docker reserves exit code 2 in health checks, so every failure here is a 1.
    try:
        settings = Settings.from_sources(os.environ, overrides)
    except ConfigError as exc:
        print(f"quimbi-sandbox healthcheck: {exc}", file=sys.stderr)
        return 1
    healthy, seen = probe(health_url(settings))
    print(seen, file=sys.stderr if not healthy else sys.stdout)
    return 0 if healthy else 1
