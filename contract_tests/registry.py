"""The check registry: every check the kit runs, with one signature, in one place.

A check is a function ``check(target, operation) -> None`` registered with :func:`check`.
It talks to the server through ``target`` (so the rate limit and the request log apply)
and raises :class:`CheckFailure` naming what was expected and what came back, with the
request that showed it. The CLI and the pytest plugin both run checks from this registry,
so a check means the same thing in both (schemathesis' ``@check`` registry is the model).

Layers: ``schema`` (schemathesis over openapi.yaml), ``semantics`` (invariants a schema
can't say), ``stateful`` (ingest, then read back). This module decides nothing about HTTP.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

    from contract_tests.target import Target

LAYERS = ("schema", "semantics", "stateful")
# Operations that change the tenant's data: never called with --read-only.
WRITE_OPERATIONS = ("ingestOrders", "ingestInteractions")


@dataclass(frozen=True)
class Exchange:
    """One request as sent and what came back, enough to print and replay it."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    status: int | None
    response_text: str

    @classmethod
    def from_prepared(
        cls, request: requests.PreparedRequest, status: int | None, response_text: str = ""
    ) -> Exchange:
        body = request.body
        if isinstance(body, str):
            body = body.encode("utf-8", "surrogatepass")
        return cls(
            method=request.method or "GET",
            url=request.url or "",
            headers=dict(request.headers),
            body=body,
            status=status,
            response_text=response_text,
        )

    def curl(self, drop_headers: Sequence[str] = ()) -> str:
        """A curl line reproducing the request; the key is shown as given (it is the user's)."""
        parts = ["curl", "-sS", "-X", self.method, shlex.quote(self.url)]
        dropped = {name.lower() for name in drop_headers}
        for name, value in self.headers.items():
            if name.lower() in {"x-api-key", "content-type"} and name.lower() not in dropped:
                parts += ["-H", shlex.quote(f"{name}: {value}")]
        if self.body:
            text = self.body.decode("utf-8", "backslashreplace")
            parts += ["--data-raw", shlex.quote(text)]
        return " ".join(parts)


class CheckFailure(AssertionError):
    """A check saw the server break the contract: what was expected, what came back."""

    def __init__(
        self,
        expected: str,
        actual: str,
        exchange: Exchange | None = None,
        curl: str | None = None,
    ) -> None:
        super().__init__(f"expected {expected}; got {actual}")
        self.expected = expected
        self.actual = actual
        self.exchange = exchange
        self.curl = curl or (exchange.curl() if exchange else None)


class CheckSkipped(Exception):
    """The check does not apply to this target (e.g. it needs a second key)."""


CheckFunction = Callable[["Target", str], None]


@dataclass(frozen=True)
class Check:
    name: str
    layer: str
    function: CheckFunction
    operations: tuple[str, ...]
    writes: bool = False  # calls ingestion: skipped with --read-only
    description: str = ""

    def run(self, target: Target, operation: str) -> None:
        self.function(target, operation)


@dataclass
class Registry:
    checks: dict[str, Check] = field(default_factory=dict)

    def add(self, item: Check) -> None:
        if item.name in self.checks and self.checks[item.name].function is not item.function:
            raise ValueError(f"a check named {item.name!r} is already registered")
        self.checks[item.name] = item

    def select(
        self, patterns: Sequence[str] = (), read_only: bool = False
    ) -> list[tuple[Check, str]]:
        """(check, operation) pairs to run: ``patterns`` match a layer, a check name or an
        operation id, or ``name:operation``; nothing selected means everything."""
        pairs = []
        for item in self.checks.values():
            if read_only and item.writes:
                continue
            for operation in item.operations:
                if read_only and operation in WRITE_OPERATIONS:
                    continue
                if not patterns or any(_matches(p, item, operation) for p in patterns):
                    pairs.append((item, operation))
        return pairs


def _matches(pattern: str, item: Check, operation: str) -> bool:
    name, _, op = pattern.partition(":")
    if op:
        return name in (item.name, item.layer) and op == operation
    return pattern in (item.layer, item.name, operation)


REGISTRY = Registry()


def check(
    layer: str,
    operations: Sequence[str],
    *,
    name: str | None = None,
    writes: bool = False,
) -> Callable[[CheckFunction], CheckFunction]:
    """Register ``function(target, operation)`` as a check of ``layer`` over ``operations``."""
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}")

    def register(function: CheckFunction) -> CheckFunction:
        doc = (function.__doc__ or "").strip().splitlines()
        REGISTRY.add(
            Check(
                name=name or function.__name__,
                layer=layer,
                function=function,
                operations=tuple(operations),
                writes=writes,
                description=doc[0] if doc else "",
            )
        )
        return function

    return register


def describe(value: Any, limit: int = 300) -> str:
    """A value for a report line, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``: for plans, ETAs and waits."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
