"""Fault injection decisions: which fault and which latency apply to one request.

Owns matching rules to requests and :meth:`FaultEngine.decide` (``sandbox.fault_rules``
owns what a valid rule looks like). It must not import Flask and never sleeps or touches a
socket: ``sandbox.api.faulting`` carries a :class:`Decision` out.

Where a request's fault comes from, first source wins:

    X-Sandbox-Fault header -> runtime rules, in the order added -> magic customer

A generated (or given) answer instead of the persona's, when no fault applies, comes
from ``X-Sandbox-Response``, then a rule with ``respond`` (in the same pass as faults:
the first matching rule that fires decides), then ``--responses generated``.

and its latency: ``X-Sandbox-Latency``, else the rule or magic customer that applied,
else the global ``--latency`` profile; always capped by ``--hang-cap-seconds``. Only the
first matching rule that fires applies; a request with ``X-Sandbox-Fault`` is not matched
against rules at all (so it uses up no rule's ``times``).

Randomness is counter-based: a rule's n-th evaluation draws
``stable_int(seed, rule id, n)``, so two servers with the same seed, rules and request
order make the same choices. The state (rules, their counters, magic customers' call
counts per tenant) lives in a :class:`~sandbox.store.counters.Counters`, so it can be
shared by several processes.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.fault_rules import FAULTS, GENERATED, STATUS_FAULTS, MagicFaultCustomer
from sandbox.latency import LatencyProfile, parse_latency
from sandbox.personas.rng import stable_int
from sandbox.store.counters import Counters


@dataclass(frozen=True)
class Fault:
    """What to do instead of the normal answer."""

    kind: str  # one of FAULTS
    source: str  # header | rule:<id> | customer:<id>
    code: str | None = None
    message: str | None = None
    retry_after: int | None = None
    hang_seconds: float | None = None

    @property
    def status(self) -> int | None:
        return int(self.kind) if self.kind in STATUS_FAULTS else None

    @property
    def label(self) -> str:
        """The ``X-Sandbox-Fault-Injected`` value."""
        return f"{self.kind}; source={self.source}"


@dataclass(frozen=True)
class Respond:
    """Answer with a generated case (``answer`` None) or with ``answer`` as given."""

    source: str  # header | rule:<id> | server
    case: int | None = None  # None: the operation's next case
    status: int | None = None  # restrict the case to this documented status
    answer: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"{GENERATED if self.answer is None else 'given'}; source={self.source}"


class SandboxHeaderError(ValueError):
    """A sandbox request header the sandbox cannot read (answered 400)."""


def parse_response_header(text: str) -> Respond:
    """``generated``, ``generated; case=17``, ``generated; status=429``, or both."""
    mode, *params = (part.strip() for part in text.split(";"))
    if mode.lower() != GENERATED:
        raise SandboxHeaderError(
            f"X-Sandbox-Response: {text!r} is not 'generated' "
            "(optionally '; case=N' and '; status=NNN')"
        )
    found: dict[str, int] = {}
    for param in params:
        name, _, value = param.partition("=")
        name = name.strip().lower()
        if name not in {"case", "status"} or name in found or not value.strip().isdigit():
            raise SandboxHeaderError(
                f"X-Sandbox-Response: {param!r} is not case=N or status=NNN "
                "(each at most once; N and NNN whole numbers)"
            )
        found[name] = int(value.strip())
    return Respond("header", found.get("case"), found.get("status"))


@dataclass(frozen=True)
class RequestFacts:
    """What matching can look at; built by the pipeline from the HTTP request."""

    method: str
    path: str
    api_key: str
    tenant: str
    customer_id: str | None = None
    fault_header: str | None = None
    latency_header: str | None = None
    response_header: str | None = None


@dataclass(frozen=True)
class Decision:
    fault: Fault | None = None
    latency_seconds: float = 0.0
    latency_source: str | None = None
    respond: Respond | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    serial: int
    document: dict[str, Any]
    latency: LatencyProfile | None

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Rule:
        latency = parse_latency(document["latency"]) if "latency" in document else None
        return cls(document["id"], document["serial"], document, latency)

    def matches(self, facts: RequestFacts) -> bool:
        match = self.document.get("match", {})
        checks = [
            ("method", facts.method.upper(), lambda want, got: want.upper() == got),
            ("path", facts.path, fnmatch.fnmatchcase),
            ("customer_id", facts.customer_id, fnmatch.fnmatchcase),
            ("key", facts.api_key, str.__eq__),
            ("tenant", facts.tenant, str.__eq__),
        ]
        for name, got, compare in checks:
            want = match.get(name)
            if want is not None and (got is None or not compare(got, want)):
                return False
        return True

    def fault(self) -> Fault | None:
        doc = self.document
        if "fault" not in doc:
            return None
        return Fault(
            str(doc["fault"]),
            f"rule:{self.id}",
            doc.get("code"),
            doc.get("message"),
            doc.get("retry_after"),
            doc.get("hang_seconds"),
        )

    def respond(self) -> Respond | None:
        respond = self.document.get("respond")
        if respond is None:
            return None
        source = f"rule:{self.id}"
        if respond == GENERATED:
            return Respond(source, self.document.get("case"), self.document.get("status"))
        return Respond(source, answer=respond)


def _draw(*parts: object) -> float:
    """A uniform number in (0, 1) that depends only on ``parts``."""
    return (stable_int(*parts) + 0.5) / 2**64


class FaultEngine:
    """Rules, magic fault customers and the global latency, over a Counters store."""

    def __init__(
        self,
        counters: Counters,
        *,
        seed: int = 0,
        magic: Mapping[str, MagicFaultCustomer] | None = None,
        latency: LatencyProfile | None = None,
        hold_cap_seconds: float = 120.0,
        generated: bool = False,
    ) -> None:
        self._counters = counters
        self.seed = seed
        self.magic = dict(magic or {})
        self.latency = latency
        self.hold_cap_seconds = hold_cap_seconds
        self.generated = generated  # --responses generated: every answer a generated case
        self._parsed: dict[tuple[str, int], Rule] = {}

    # Rules

    def add_rules(self, documents: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store already validated rules; each gets a serial (and an id if it has none).

        A rule whose id is taken replaces the old one, with fresh counters.
        """
        stored = []
        for document in documents:
            serial = self._counters.incr("faults:serial")
            rule = {"id": document.get("id") or f"rule-{serial}", **document, "serial": serial}
            if isinstance(rule.get("fault"), int):
                rule["fault"] = str(rule["fault"])
            if "method" in rule.get("match", {}):
                rule["match"] = {**rule["match"], "method": rule["match"]["method"].upper()}
            self._counters.add_rule(rule)
            stored.append(self.describe(rule))
        return stored

    def _rules(self) -> list[Rule]:
        rules = []
        for document in self._counters.rules():
            key = (document["id"], document["serial"])
            parsed = self._parsed.get(key)
            if parsed is None:
                parsed = self._parsed[key] = Rule.from_document(document)
            rules.append(parsed)
        return rules

    def describe(self, document: dict[str, Any]) -> dict[str, Any]:
        """A rule as GET /_sandbox/faults shows it, with its live counts."""
        prefix = f"faults:rule:{document['serial']}"
        fired = self._counters.get(f"{prefix}:fired")
        shown = {k: v for k, v in document.items() if k != "serial"}
        times = document.get("times")
        shown["remaining"] = None if times is None else max(times - fired, 0)
        shown["fired"] = fired
        shown["evaluated"] = self._counters.get(f"{prefix}:evaluated")
        return shown

    def list_rules(self) -> list[dict[str, Any]]:
        return [self.describe(document) for document in self._counters.rules()]

    def remove_rule(self, rule_id: str) -> bool:
        for key in [k for k in self._parsed if k[0] == rule_id]:
            self._parsed.pop(key, None)
        return self._counters.remove_rule(rule_id)

    def clear(self) -> int:
        """Remove every rule and start the magic customers' call counts over."""
        self._parsed.clear()
        removed = self._counters.clear_rules()
        self._counters.delete("faults:rule:")
        self.reset_customers()
        return removed

    def reset_customers(self, tenant: str | None = None) -> None:
        """Restart magic customers' call counts (e.g. flaky) for a tenant, or all."""
        self._counters.delete("faults:customer:" + (f"{tenant}:" if tenant else ""))

    # Decisions

    def _fire(self, rule: Rule) -> bool:
        """Count one evaluation of a matching rule; True when it applies this time."""
        prefix = f"faults:rule:{rule.serial}"
        times = rule.document.get("times")
        if times is not None and self._counters.get(f"{prefix}:fired") >= times:
            return False
        probability = rule.document.get("probability")
        if probability is not None:
            n = self._counters.incr(f"{prefix}:evaluated")
            seed = rule.document.get("seed", self.seed)
            if _draw(seed, "fault-rule", rule.id, n) >= probability:
                return False
        else:
            self._counters.incr(f"{prefix}:evaluated")
        fired = self._counters.incr(f"{prefix}:fired")
        if times is not None and fired > times:  # another worker took the last one
            self._counters.incr(f"{prefix}:fired", -1)
            return False
        return True

    def _customer_fault(self, magic: MagicFaultCustomer, tenant: str) -> Fault | None:
        if magic.fault is None:
            return None
        if magic.first_calls is not None:
            calls = self._counters.incr(f"faults:customer:{tenant}:{magic.customer_id}")
            if calls > magic.first_calls:
                return None
        return Fault(magic.fault, f"customer:{magic.customer_id}", retry_after=magic.retry_after)

    def _sample(self, profile: LatencyProfile, *parts: object) -> float:
        draw = 0.5
        if profile.varies:
            draw = _draw(self.seed, *parts, self._counters.incr(f"faults:latency:{parts[0]}"))
        return profile.seconds(draw, self.hold_cap_seconds)

    def decide(self, facts: RequestFacts) -> Decision:
        """The fault (if any) and latency for one request; counts what it evaluates.

        Raises ``ValueError`` (LatencySyntaxError) for a malformed latency header; an
        unknown ``X-Sandbox-Fault`` value is a ``ValueError`` too, an unreadable
        ``X-Sandbox-Response`` a :class:`SandboxHeaderError`.
        """
        fault: Fault | None = None
        respond = (
            parse_response_header(facts.response_header)
            if facts.response_header is not None
            else None
        )
        if facts.fault_header is not None:
            kind = facts.fault_header.strip().lower()
            if kind not in FAULTS:
                raise ValueError(
                    f"X-Sandbox-Fault: {facts.fault_header!r} is not one of {', '.join(FAULTS)}"
                )
            fault = Fault(kind, "header")
        header_latency = (
            parse_latency(facts.latency_header) if facts.latency_header is not None else None
        )
        rule = None
        # An explicit header never uses up a rule's times or draws.
        if fault is None and respond is None:
            for candidate in self._rules():
                if candidate.matches(facts) and self._fire(candidate):
                    rule = candidate
                    break
            if rule is not None:
                fault, respond = rule.fault(), rule.respond()
        magic = self.magic.get(facts.customer_id or "")
        if fault is None and respond is None and magic is not None:
            fault = self._customer_fault(magic, facts.tenant)
        if fault is not None:
            respond = None  # X-Sandbox-Fault wins over X-Sandbox-Response
        elif respond is None and self.generated:
            respond = Respond("server")

        if header_latency is not None:
            seconds, source = self._sample(header_latency, "header"), "header"
        elif rule is not None and rule.latency is not None:
            seconds, source = self._sample(rule.latency, f"rule:{rule.id}"), f"rule:{rule.id}"
        elif magic is not None and magic.latency is not None:
            seconds = self._sample(magic.latency, f"customer:{magic.customer_id}")
            source = f"customer:{magic.customer_id}"
        elif self.latency is not None:
            seconds, source = self._sample(self.latency, "global"), "global"
        else:
            seconds, source = 0.0, None
        return Decision(fault, seconds, source, respond)

    def hang_seconds(self, fault: Fault) -> float:
        """How long a ``hang`` holds the connection: as asked, at most the cap."""
        wanted = fault.hang_seconds or self.hold_cap_seconds
        return min(wanted, self.hold_cap_seconds)
