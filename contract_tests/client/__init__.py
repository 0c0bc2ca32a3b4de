"""The client side of the kit: drive an integrator's client with answers generated
from the contract, and shrink a failure to the smallest answer that still breaks it.

``answers(operation_id, status=None)`` is the Hypothesis strategy (``answers.py``);
the ``quimbi_sandbox`` fixture's ``respond_with(answer)`` serves one; ``command.py`` is
``quimbi-contract client --command CMD`` for a client in any language.
"""

from __future__ import annotations

from contract_tests.client.answers import Answer, answers

__all__ = ["Answer", "answers"]
