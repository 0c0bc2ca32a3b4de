"""A quilting and craft store's catalogue, made with Faker from the seed.

Faker is pinned in pyproject.toml: its word lists decide product names, and golden
files and integrators' snapshots depend on those names staying put.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from sandbox.personas.rng import stable_int

# (category, product nouns, price range in cents)
_CATEGORIES: tuple[tuple[str, tuple[str, ...], tuple[int, int]], ...] = (
    (
        "fabric",
        (
            "Quilting Cotton Fat Quarter",
            "Batik Yardage",
            "Flannel Half Yard",
            "Precut Charm Pack",
            "Jelly Roll Strips",
        ),
        (450, 2400),
    ),
    (
        "thread",
        ("Cotton Piecing Thread", "Variegated Quilting Thread", "Polyester Bobbin Pack"),
        (399, 1899),
    ),
    (
        "batting",
        ("Cotton Batting Queen", "Wool Batting Crib", "Fusible Batting Roll"),
        (1299, 5499),
    ),
    (
        "notions",
        ("Rotary Cutter 45mm", "Wonder Clips 50ct", "Seam Ripper", "Applique Pins"),
        (399, 2999),
    ),
    (
        "patterns",
        ("Sampler Quilt Pattern", "Table Runner Pattern", "Baby Quilt Pattern"),
        (899, 1599),
    ),
    ("tools", ("Self-Healing Cutting Mat", "Acrylic Ruler 6x24", "Pressing Iron"), (1499, 8999)),
    ("kits", ("Beginner Quilt Kit", "Mini Quilt Kit", "Holiday Table Topper Kit"), (2999, 12999)),
    (
        "machines",
        ("Sewing Machine Service Plan", "Quarter-Inch Presser Foot", "Walking Foot Attachment"),
        (2499, 19999),
    ),
)

CATEGORY_NAMES: tuple[str, ...] = tuple(name for name, _, _ in _CATEGORIES)


@dataclass(frozen=True)
class Product:
    product_id: str
    product_name: str
    category: str
    price_cents: int


@lru_cache(maxsize=8)
def catalogue(seed: int) -> tuple[Product, ...]:
    """Every product of the store for ``seed``: a colourway of each base product."""
    # Imported here, not at the top: Faker's import (~50 ms) was the largest share of
    # the sandbox's start-up, and a magic customer's analyze never reads a product.
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(stable_int(seed, "catalogue"))
    products = []
    for category, nouns, (low, high) in _CATEGORIES:
        for noun_index, noun in enumerate(nouns):
            for variant in range(3):
                # Faker gives CSS names ("YellowGreen"); shops write "Yellow Green".
                colour = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", fake.color_name())
                price = fake.random_int(low, high)
                # Shop prices end in .99 or .49, as real ones do.
                price = price - price % 50 + (49 if fake.boolean() else 99) - 50
                products.append(
                    Product(
                        product_id=f"prd_{category[:3]}_{noun_index}{variant}",
                        product_name=f"{colour} {noun}",
                        category=category,
                        price_cents=max(price, 99),
                    )
                )
    return tuple(products)


@lru_cache(maxsize=8)
def shelves(seed: int) -> dict[str, tuple[Product, ...]]:
    """The catalogue by category, in catalogue order: generation picks from a shelf for
    every item of every order, so the shelves are sorted out once per seed."""
    return {
        name: tuple(p for p in catalogue(seed) if p.category == name) for name in CATEGORY_NAMES
    }


def products_in(seed: int, category: str) -> tuple[Product, ...]:
    return shelves(seed).get(category, ())
