"""Stable randomness: one independent generator per (seed, tenant, customer, purpose)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable


def stable_int(*parts: object) -> int:
    """A 64-bit integer that depends only on ``parts`` (never on PYTHONHASHSEED)."""
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def stable_rng(*parts: object) -> random.Random:
    return random.Random(stable_int(*parts))


def below(getrandbits: Callable[[int], int], n: int) -> int:
    """The number ``random.Random`` draws for ``choice`` over n things and for
    ``randrange(n)`` (``randint(a, b)`` is ``a + below(bits, b - a + 1)``): its
    ``_randbelow``, n's bit length in bits, drawn again while not below n. One call
    where those methods make three: a generated history draws dozens per customer. The
    pinned histories and answers (tests/test_personas_pinned.py) fail if it differs."""
    k = n.bit_length()
    r = getrandbits(k)
    while r >= n:
        r = getrandbits(k)
    return r
