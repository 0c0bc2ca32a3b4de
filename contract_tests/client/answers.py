"""``answers(operation_id, status=None)``: every documented answer, as a Hypothesis strategy.

The same strategy the sandbox draws its generated cases from (``sandbox.generated``),
so what a property test finds, ``X-Sandbox-Response: generated`` can serve too. It
yields :class:`Answer` (status, headers, body); Hypothesis shrinks a failing one towards
the first documented status (200), fewer and shorter values, and no extra properties.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sandbox.generated import Answer, AnswerGenerator
from sandbox.spec import load_contract

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = ["Answer", "answers", "generator"]


@functools.cache
def generator() -> AnswerGenerator:
    """One per process: building a status's strategies costs tens of milliseconds."""
    return AnswerGenerator(load_contract())


def answers(operation_id: str, status: int | Iterable[int] | None = None) -> SearchStrategy[Answer]:
    """Documented answers of ``operation_id`` (only of ``status``, or of those statuses).

    ``KeyError`` for an unknown operation; ``ValueError`` for a status it does not
    document."""
    return generator().strategy(operation_id, status)
