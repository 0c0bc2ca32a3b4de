"""`quimbi-sandbox serve ...`: flags built from Settings, so each is also an env var."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from sandbox import __version__
from sandbox.auth import KeyFileError
from sandbox.config import ENV_PREFIX, ConfigError, Settings

COMMANDS = ("serve",)


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
    for option in Settings.option_fields():
        flag = "--" + option.name.replace("_", "-")
        env = ENV_PREFIX + option.name.upper()
        shown_default = option.default if option.default is not None else "none"
        help_text = f"{option.metadata['help']} [env {env}; default {shown_default}]"
        if isinstance(option.default, bool):
            serve.add_argument(
                flag,
                dest=option.name,
                default=None,
                action=argparse.BooleanOptionalAction,
                help=help_text,
            )
            continue
        serve.add_argument(
            flag,
            dest=option.name,
            default=None,
            metavar=option.metadata.get("metavar") or option.name.upper(),
            help=help_text,
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (
        args_list[0] not in COMMANDS and args_list[0] not in {"-h", "--help", "--version"}
    ):
        args_list.insert(0, "serve")
    args = build_parser().parse_args(args_list)
    overrides = {option.name: getattr(args, option.name) for option in Settings.option_fields()}
    from sandbox.fault_rules import FaultRuleError  # imported late, like the app: --help stays fast

    try:
        settings = Settings.from_sources(os.environ, overrides)
        from sandbox.app import create_app  # imported late: --help stays fast

        app = create_app(settings)
    except (ConfigError, KeyFileError, FaultRuleError) as exc:
        print(f"quimbi-sandbox: {exc}", file=sys.stderr)
        return 2
    from sandbox.server import serve

    print(
        f"Quimbi Sandbox {__version__} on http://{settings.host}:{settings.port} "
        f"(seed {settings.seed}, customers {settings.customers})",
        file=sys.stderr,
        flush=True,
    )
    serve(app, settings)
    return 0
