"""One settings object for the sandbox, filled from defaults, QUIMBI_SANDBOX_* and flags.

Every field is one CLI flag (``--<name-with-dashes>``) and one environment variable
(``QUIMBI_SANDBOX_<NAME>``); flags win over the environment, which wins over defaults.
The CLI builds its parser from these fields, so the two can't drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "QUIMBI_SANDBOX_"


class ConfigError(ValueError):
    """A setting has a value the sandbox cannot use; the message says which and why."""


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be 0..65535")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be >= 1")
    return value


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be true or false")


def _timestamp(text: str) -> str:
    from sandbox.clock import parse_timestamp

    try:
        parse_timestamp(text)
    except ValueError:
        raise ValueError("must be an RFC 3339 time such as 2024-01-15T10:30:00Z") from None
    return text


def _store_url(text: str) -> str:
    if text == "memory" or text.startswith(("redis://", "rediss://", "unix://")):
        return text
    raise ValueError("must be memory or a redis:// URL")


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text

    return parse


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise ValueError("must be a number of seconds > 0")
    return value


def _latency(text: str) -> str:
    from sandbox.latency import parse_latency  # pure; imported late like every parser

    return parse_latency(text).text


def _rate_limit(text: str) -> str:
    from sandbox.ratelimit import parse_rate_limit

    parse_rate_limit(text)
    return text.replace(" ", "").lower()


def _cors_origins(text: str) -> str:
    from sandbox.cors import parse_origins

    return parse_origins(text)


def _upstream_url(text: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL such as https://staging.example")
    if parts.username or parts.password:
        raise ValueError("must not hold credentials (use --upstream-api-key)")
    return text.rstrip("/")


def _option(
    default: Any,
    help: str,
    parse: Callable[[str], Any] = str,
    metavar: str | None = None,
    command: str | None = None,
) -> Any:
    """``command``: the one subcommand whose parser has the flag (None: serve and proxy)."""
    return field(
        default=default,
        metadata={"help": help, "parse": parse, "metavar": metavar, "command": command},
    )


@dataclass(frozen=True)
class Settings:
    host: str = _option("127.0.0.1", "Interface to bind (0.0.0.0 inside a container).")
    port: int = _option(8080, "Port to listen on.", _port)
    seed: int = _option(0, "Seed for all generated data; same seed, same bytes.", int, "N")
    keys: Path | None = _option(
        None, "YAML file of extra API keys, merged over fixtures/keys.yaml.", Path, "FILE"
    )
    max_body_bytes: int = _option(
        1024 * 1024, "Largest accepted request body in bytes (413 above it).", _positive_int
    )
    log_level: str = _option("info", "Log level: debug, info, warning, error.")
    customers: str = _option(
        "open",
        "open: any customer id exists (generated); strict: only magic and ingested ones.",
        _choice("open", "strict"),
        "MODE",
    )
    now: str | None = _option(
        None,
        "Freeze the test clock at this RFC 3339 time (default: real time).",
        _timestamp,
        "TIME",
    )
    store: str = _option(
        "memory",
        "Where state lives: memory, or redis://host:6379/0 to share it between processes.",
        _store_url,
        "URL",
    )
    workers: int = _option(
        1, "Server worker processes (more than 1 needs a redis store).", _positive_int
    )
    state: Path | None = _option(
        None,
        "JSON file of state to load at start (as GET /_sandbox/state exports).",
        Path,
        "FILE",
    )
    journal_size: int = _option(
        1000, "How many requests GET /_sandbox/requests keeps.", _positive_int, "N"
    )
    admin_token: str | None = _option(
        None,
        "Require 'Authorization: Bearer TOKEN' on /_sandbox/* (except health).",
        str,
        "TOKEN",
    )
    control: bool = _option(
        True, "Serve the /_sandbox/* control API (--no-control keeps only health).", _bool
    )
    strict: bool = _option(False, "Reject request fields the contract does not name (422).", _bool)
    faults: Path | None = _option(
        None, "YAML file of fault rules loaded at start (see README).", Path, "FILE"
    )
    latency: str | None = _option(
        None,
        "Latency added to every /api/ answer: 50 (ms), 20-80 (uniform) or p50=80,p99=400.",
        _latency,
        "PROFILE",
    )
    rate_limit: str = _option(
        "default",
        "Per-key rate limits: off, default (100/min,1000/hour) or <N>/min,<M>/hour.",
        _rate_limit,
        "LIMITS",
    )
    access_log: bool = _option(
        True, "One line per request on stdout (--no-access-log prints none).", _bool
    )
    log_format: str = _option(
        "text",
        "Access log lines: text (coloured on a terminal) or json (the journal's fields).",
        _choice("text", "json"),
        "FORMAT",
    )
    hang_cap_seconds: float = _option(
        120.0,
        "Longest the sandbox ever holds a request (latency or hang fault), in seconds.",
        _positive_float,
        "SECONDS",
    )
    behaviour_checks: bool = _option(
        True,
        "Judge each client's retries (backoff 1 s/2 s/4 s, Retry-After, no 4xx resent) and"
        " report breaches as violations (--no-behaviour-checks turns it off).",
        _bool,
    )
    cors_origins: str = _option(
        "*",
        "Origins whose browser pages may call /api/: * (any), a comma-separated list "
        "(http://localhost:3000,...) or off.",
        _cors_origins,
        "ORIGINS",
    )
    responses: str = _option(
        "persona",
        "What answers /api/ calls: persona (the customer model) or generated (a case "
        "generated from openapi.yaml for every call; see 'Verify your client').",
        _choice("persona", "generated"),
        "SOURCE",
    )

    upstream: str | None = _option(
        None,
        "The platform the proxy forwards every /api/ request to (http:// or https:// URL).",
        _upstream_url,
        "URL",
        command="proxy",
    )
    upstream_timeout: float = _option(
        10.0,
        "Longest the proxy waits for the upstream's whole answer, in seconds (then 503).",
        _positive_float,
        "SECONDS",
        command="proxy",
    )
    upstream_api_key: str | None = _option(
        None,
        "The key the proxy sends upstream in place of the client's X-API-Key.",
        str,
        "KEY",
        command="proxy",
    )
    fallback: str = _option(
        "none",
        "When the upstream lacks a contract operation (404/405/501) or fails: none (pass "
        "its answer on; a failure is a 503) or sandbox (the sandbox answers instead).",
        _choice("none", "sandbox"),
        "MODE",
        command="proxy",
    )
    record: Path | None = _option(
        None,
        "Append every exchange to this file as one JSON line (keys redacted; see README).",
        Path,
        "FILE",
        command="proxy",
    )
    replay: Path | None = _option(
        None,
        "Answer requests matching one a --record FILE holds with its recorded answer.",
        Path,
        "FILE",
        command="serve",
    )
    reject_invalid_requests: bool = _option(
        False,
        "Answer an off-contract request with the sandbox's own error (422, 400, 415) "
        "instead of forwarding it.",
        _bool,
        command="proxy",
    )

    @classmethod
    def option_fields(cls, command: str | None = None) -> list[dataclasses.Field[Any]]:
        """Every setting, or those ``command``'s parser offers."""
        every = list(dataclasses.fields(cls))
        if command is None:
            return every
        return [o for o in every if o.metadata["command"] in (None, command)]

    @classmethod
    def from_sources(
        cls,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Defaults, then ``environ`` (QUIMBI_SANDBOX_*), then ``overrides`` (CLI flags)."""
        values: dict[str, Any] = {}
        for option in cls.option_fields():
            env_name = ENV_PREFIX + option.name.upper()
            raw = (environ or {}).get(env_name)
            if raw is not None:
                values[option.name] = _parse(option, raw, env_name)
        for name, value in (overrides or {}).items():
            if value is None:
                continue
            option = next(o for o in cls.option_fields() if o.name == name)
            values[name] = _parse(option, value, "--" + name.replace("_", "-"))
        return cls(**values)

    def __post_init__(self) -> None:
        if self.workers > 1 and self.store == "memory":
            raise ConfigError(
                "--workers > 1 needs a shared store: add --store redis://HOST:6379/0 "
                "(each worker would otherwise keep its own state)"
            )

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _parse(option: dataclasses.Field[Any], raw: Any, source: str) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return option.metadata["parse"](raw)
    except ValueError as exc:
        raise ConfigError(f"{source}={raw!r}: {exc}") from None
