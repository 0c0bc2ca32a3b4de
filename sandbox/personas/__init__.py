"""Deterministic customers: histories, the metrics derived from them, and what follows.

Pure Python, no Flask. Everything a customer looks like comes from
``(seed, tenant, customer_id)`` through :func:`sandbox.personas.rng.stable_rng`, never
from call order or a global random generator.
"""

from sandbox.personas.model import CustomerModel

__all__ = ["CustomerModel"]
