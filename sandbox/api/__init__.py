"""Thin Flask blueprints for the nine Quimbi operations.

Each view is declared with :func:`operation`, which runs the shared request pipeline
(authenticate, authorise, parse, validate) and hands the view a plain body; the view
calls :class:`sandbox.platform.Platform` and returns a plain dict.
"""

from sandbox.api.pipeline import operation

__all__ = ["operation"]
