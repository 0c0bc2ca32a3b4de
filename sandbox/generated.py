"""Answers generated from the contract instead of the persona model.

Owns what a generated answer is (:class:`Answer`), the Hypothesis strategy of every
documented answer of an operation (:meth:`AnswerGenerator.strategy`), and drawing one
case of it deterministically (:meth:`AnswerGenerator.case`). No Flask: the pipeline
serves the answer, the contract kit's ``contract_tests.client`` reuses the strategy.

Bodies come from schemathesis' own schema-to-strategy generator (the kit already pins
schemathesis 4.32; it reads the contract's Draft 2020-12 as the validators do), over
the contract's schemas narrowed where the contract says more than its JSON Schema:
an error envelope carries its response's documented code, and its ``details`` follow
the response's ``x-details-schema``. Three bodies in four have no properties beyond
the declared ones (the contract allows them everywhere, but they make bodies slow to
draw and hard to read); the fourth may add some to every object.

A case is identified by (seed, operation, case number, and the status it was
restricted to, if any). Its answer is drawn from the strategy by a
``ConjectureData`` fed from a ``random.Random`` seeded with a stable hash of the
identity, so the same identity gives the same bytes in any process. Hypothesis' public
ways to draw an example (``find``, ``.example()``) are neither deterministic nor meant
for production; ``ConjectureData(random=...)`` plus a ``BuildContext`` is what
Hypothesis' own engine does for one test case. Its default provider mixes in constants
harvested from whatever local modules the process imported, so cases use a provider
that draws only Hypothesis' fixed global constants.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sandbox.personas.rng import stable_int
from sandbox.spec import Contract, _forbid_unknown_properties

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

# Hypothesis and schemathesis are imported on first use: together they would add
# ~0.6 s to every sandbox start, and most sandboxes never generate an answer.

# A header value is drawn up to this bound: a client may fairly refuse to wait longer
# than a day, or to believe in a limit past 32 bits.
HEADER_INTEGER_MAX = 2**31 - 1
RETRY_AFTER_MAX = 86_400
# Objects without declared properties (an error's free-form `details`) stay small.
FREE_OBJECT_MAX_PROPERTIES = 3
EXTRA_PROPERTIES_ONE_IN = 4
_DRAW_ATTEMPTS = 20
_CODE = re.compile(r"`([A-Z][A-Z0-9_]+)`")


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, headers (in documented order) and the JSON body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None

    def encoded(self) -> bytes:
        return json.dumps(
            self.body, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "headers": dict(self.headers), "body": self.body}

    @property
    def error_code(self) -> str | None:
        """The envelope's code when the answer is an error that carries one."""
        if self.status < 400 or not isinstance(self.body, dict):
            return None
        error = self.body.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        return code if isinstance(code, str) else None

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> Answer:
        return cls(int(document["status"]), dict(document.get("headers") or {}), document["body"])


@dataclass(frozen=True)
class CaseId:
    seed: int
    operation_id: str
    case: int
    status: int | None = None  # the one status the case was restricted to

    def label(self) -> str:
        """The ``X-Sandbox-Case`` value and the journal's ``case``."""
        restricted = f"; status={self.status}" if self.status is not None else ""
        return f"seed={self.seed}; operation={self.operation_id}; case={self.case}{restricted}"


@functools.cache
def fixed_constants_provider() -> type:
    """Hypothesis' provider without the constants it harvests from the process's own
    modules (which differ between a test run and a server): only its global ones,
    boundary numbers and awkward strings included."""
    from hypothesis.internal.conjecture.choice import choice_constraints_key, choice_permitted
    from hypothesis.internal.conjecture.providers import GLOBAL_CONSTANTS, HypothesisProvider

    permitted_by_key: dict[Any, tuple[Any, ...]] = {}

    class FixedConstantsProvider(HypothesisProvider):
        def _maybe_draw_constant(self, choice_type, constraints, *, p: float = 0.05):
            assert self._random is not None
            if self._random.random() > p:
                return None
            key = (choice_type, choice_constraints_key(choice_type, constraints))
            permitted = permitted_by_key.get(key)
            if permitted is None:
                permitted = permitted_by_key[key] = tuple(
                    choice
                    for choice in GLOBAL_CONSTANTS.set_for_type(choice_type)
                    if choice_permitted(choice, constraints)
                )
            return self._random.choice(permitted) if permitted else None

    return FixedConstantsProvider


class AnswerGenerator:
    """Every documented answer of every operation, as strategies built on first use."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self._strategies: dict[tuple[str, tuple[int, ...]], SearchStrategy[Answer]] = {}
        self._statuses: dict[str, tuple[int, ...]] = {}
        components = contract.document.get("components", {})
        self._components = components
        self._strict_components = _forbid_unknown_properties(components)

    # What the contract documents

    def _spec_operation(self, operation_id: str) -> dict[str, Any]:
        operation = self.contract.operation(operation_id)  # KeyError for an unknown one
        return self.contract.document["paths"][operation.path][operation.method.lower()]

    def _response(self, operation_id: str, status: int) -> dict[str, Any]:
        response = self._spec_operation(operation_id)["responses"][str(status)]
        return self.contract.resolve(response["$ref"]) if "$ref" in response else response

    def statuses(self, operation_id: str) -> tuple[int, ...]:
        """The operation's documented statuses with a JSON body, in the contract's order."""
        found = self._statuses.get(operation_id)
        if found is None:
            responses = self._spec_operation(operation_id)["responses"]
            found = self._statuses[operation_id] = tuple(
                int(status)
                for status in responses
                if str(status).isdigit()
                and "application/json"
                in self._response(operation_id, int(status)).get("content", {})
            )
        return found

    def error_codes(self, operation_id: str, status: int) -> list[str]:
        """The codes the response's description names (``CODE``: ...)."""
        description = self._response(operation_id, status).get("description", "")
        return list(dict.fromkeys(_CODE.findall(description)))

    def _body_schema(self, operation_id: str, status: int) -> dict[str, Any]:
        response = self._response(operation_id, status)
        schema = response["content"]["application/json"]["schema"]
        codes = self.error_codes(operation_id, status) if status >= 400 else []
        if not codes:
            return schema
        details_ref = response.get("x-details-schema")
        details = (
            {"$ref": details_ref}
            if details_ref
            else {"type": "object", "maxProperties": FREE_OBJECT_MAX_PROPERTIES}
        )
        # The documented `Error` envelope, narrowed to what the response's text says.
        return {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"enum": codes},
                        "message": {"type": "string"},
                        "details": details,
                    },
                }
            },
        }

    def _body_strategy(self, operation_id: str, status: int, extras: bool) -> SearchStrategy:
        import jsonschema_rs
        from schemathesis.generation.jsonschema.builder import build

        schema = self._body_schema(operation_id, status)
        if extras:
            document = {**schema, "components": self._components}
        else:
            document = {**_forbid_unknown_properties(schema), "components": self._strict_components}
        return build(document, draft=jsonschema_rs.Draft202012, formats=_formats())

    def _headers_strategy(self, operation_id: str, status: int) -> SearchStrategy:
        from hypothesis import strategies as st

        headers = self._response(operation_id, status).get("headers", {})
        fields: dict[str, SearchStrategy] = {}
        optional: dict[str, SearchStrategy] = {}
        for name, header in headers.items():
            if "$ref" in header:
                header = self.contract.resolve(header["$ref"])
            values = _header_values(name, header.get("schema", {}))
            (fields if header.get("required") else optional)[name] = values
        return st.fixed_dictionaries(fields, optional=optional).map(
            lambda drawn: {name: drawn[name] for name in headers if name in drawn}
        )

    # Strategies and cases

    def strategy(
        self, operation_id: str, status: int | Iterable[int] | None = None
    ) -> SearchStrategy[Answer]:
        """Every documented answer of the operation (of one status, or of several, if
        given); shrinks towards the first of them (documented order) and a body with no
        extra properties. ``ValueError`` for a status the operation does not document."""
        from hypothesis import strategies as st

        documented = self.statuses(operation_id)
        if status is None:
            chosen = documented
        else:
            wanted = {status} if isinstance(status, int) else set(status)
            undocumented = sorted(wanted - set(documented))
            if undocumented or not wanted:
                raise ValueError(
                    f"status {', '.join(map(str, undocumented)) or '(none)'} is not documented "
                    f"for {operation_id} (documented: {', '.join(map(str, documented))})"
                )
            chosen = tuple(code for code in documented if code in wanted)
        key = (operation_id, chosen)
        found = self._strategies.get(key)
        if found is not None:
            return found
        per_status = {
            code: (
                self._body_strategy(operation_id, code, extras=False),
                self._body_strategy(operation_id, code, extras=True),
                self._headers_strategy(operation_id, code),
            )
            for code in chosen
        }

        @st.composite
        def answers(draw: st.DrawFn) -> Answer:
            code = draw(st.sampled_from(chosen))
            strict, extended, headers = per_status[code]
            extras = (
                draw(st.integers(0, EXTRA_PROPERTIES_ONE_IN - 1)) == EXTRA_PROPERTIES_ONE_IN - 1
            )
            body = draw(extended if extras else strict)
            return Answer(code, draw(headers), body)

        found = self._strategies[key] = answers()
        return found

    def case(self, case_id: CaseId) -> Answer:
        """The answer of one case: the same identity, the same answer, in any process."""
        from hypothesis.control import BuildContext
        from hypothesis.errors import StopTest
        from hypothesis.internal.conjecture.data import ConjectureData

        strategy = self.strategy(case_id.operation_id, case_id.status)
        provider = fixed_constants_provider()
        rng = random.Random(
            stable_int(
                "generated-answer",
                case_id.seed,
                case_id.operation_id,
                case_id.case,
                case_id.status or "",
            )
        )
        for _ in range(_DRAW_ATTEMPTS):
            data = ConjectureData(random=rng, provider=provider)
            try:
                with BuildContext(data, wrapped_test=None):
                    return data.draw(strategy)
            except StopTest:
                continue  # the draw ran past Hypothesis' buffer: draw again, same sequence
        raise RuntimeError(f"no answer drawn for {case_id.label()}")  # pragma: no cover


def _header_values(name: str, schema: dict[str, Any]) -> SearchStrategy[str]:
    from hypothesis import strategies as st

    if schema.get("type") == "integer":
        top = RETRY_AFTER_MAX if name.lower() == "retry-after" else HEADER_INTEGER_MAX
        return st.integers(schema.get("minimum", 0), schema.get("maximum", top)).map(str)
    return st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)


@functools.cache
def _formats() -> dict[str, SearchStrategy]:
    from hypothesis import strategies as st

    return {
        "date-time": st.datetimes(
            min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31)
        ).map(lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%SZ")),
        "date": st.dates().map(lambda day: day.isoformat()),
    }
