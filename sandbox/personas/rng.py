"""Stable randomness: one independent generator per (seed, tenant, customer, purpose)."""

from __future__ import annotations

import hashlib
import random


def stable_int(*parts: object) -> int:
    """A 64-bit integer that depends only on ``parts`` (never on PYTHONHASHSEED)."""
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def stable_rng(*parts: object) -> random.Random:
    return random.Random(stable_int(*parts))
