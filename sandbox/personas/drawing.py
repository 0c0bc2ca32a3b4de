"""Generated customers: random traits, and the history drawn from traits.

Every draw comes from ``stable_rng(seed, tenant, customer, purpose)``, in a fixed order,
so a customer's history is the same on every run; tests/test_personas_pinned.py pins it.
A history is drawn in two steps (:class:`DrawnHistory`), so a request that only needs
metrics never draws order lines.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from functools import cached_property, lru_cache
from itertools import accumulate
from typing import TYPE_CHECKING

from sandbox.personas.catalog import CATEGORY_NAMES, products_in
from sandbox.personas.history import (
    CADENCES,
    History,
    InteractionFact,
    OrderFact,
    OrderItem,
    Traits,
)
from sandbox.personas.rng import below, stable_rng

if TYPE_CHECKING:
    from sandbox.personas.rules import Metrics


# Kinds of customers a random id can be, with how common each is in a store's base.
_PROFILES: tuple[tuple[float, dict[str, tuple[float, float]]], ...] = (
    (
        0.30,
        {
            "orders": (6, 25),
            "aov": (40, 120),
            "recency": (3, 45),
            "tenure": (300, 1500),
            "returns": (0.0, 0.08),
            "discount": (0.0, 0.45),
            "categories": (3, 6),
        },
    ),
    (
        0.28,
        {
            "orders": (2, 6),
            "aov": (25, 80),
            "recency": (20, 150),
            "tenure": (120, 900),
            "returns": (0.0, 0.2),
            "discount": (0.1, 0.7),
            "categories": (1, 4),
        },
    ),
    (
        0.15,
        {
            "orders": (2, 10),
            "aov": (30, 90),
            "recency": (150, 420),
            "tenure": (400, 1400),
            "returns": (0.0, 0.3),
            "discount": (0.2, 0.8),
            "categories": (1, 4),
        },
    ),
    (
        0.10,
        {
            "orders": (1, 1),
            "aov": (20, 110),
            "recency": (10, 300),
            "tenure": (10, 330),
            "returns": (0.0, 0.0),
            "discount": (0.0, 1.0),
            "categories": (1, 2),
        },
    ),
    (
        0.07,
        {
            "orders": (0, 0),
            "aov": (0, 0),
            "recency": (1, 60),
            "tenure": (1, 60),
            "returns": (0.0, 0.0),
            "discount": (0.0, 0.0),
            "categories": (0, 0),
        },
    ),
    (
        0.10,
        {
            "orders": (8, 40),
            "aov": (110, 300),
            "recency": (2, 30),
            "tenure": (365, 2000),
            "returns": (0.0, 0.12),
            "discount": (0.0, 0.3),
            "categories": (4, 8),
        },
    ),
)


_PROFILE_CUM_WEIGHTS = list(accumulate(weight for weight, _ in _PROFILES))
_TICKETS = (0, 1, 2, 3)
_TICKET_CUM_WEIGHTS = list(accumulate((70, 18, 8, 4)))


def random_traits(rng: random.Random) -> Traits:
    # Cumulative weights, as choices() would add them up from the weights each time.
    _, ranges = rng.choices(_PROFILES, cum_weights=_PROFILE_CUM_WEIGHTS)[0]
    bits = rng.getrandbits

    def pick_int(name: str) -> int:  # rng.randint(low, high)
        low, high = ranges[name]
        return int(low) + below(bits, int(high) - int(low) + 1)

    orders = pick_int("orders")
    tenure = pick_int("tenure")
    recency = min(pick_int("recency"), tenure)
    if orders == 0:
        recency = tenure
    return Traits(
        orders=orders,
        aov_cents=pick_int("aov") * 100 + rng.choice((0, 49, 99)),
        recency_days=recency,
        tenure_days=tenure,
        return_rate=round(rng.uniform(*ranges["returns"]), 2),
        discount_share=round(rng.uniform(*ranges["discount"]), 2),
        categories=pick_int("categories"),
        support_tickets_90d=rng.choices(_TICKETS, cum_weights=_TICKET_CUM_WEIGHTS)[0],
        cadence=rng.choice(CADENCES),
    )


def _order_ages(traits: Traits, rng: random.Random) -> list[int]:
    """Days ago of each order, oldest first; the newest is exactly ``recency_days``."""
    n, newest = traits.orders, traits.recency_days
    if n == 0:
        return []
    bits = rng.getrandbits  # randint(a, b) is a + below(bits, b - a + 1)
    oldest = max(newest, traits.tenure_days - below(bits, min(14, traits.tenure_days) + 1))
    if n == 1:
        return [newest]
    span = oldest - newest
    if traits.cadence == "regular":
        step = span / (n - 1)
        ages = [round(oldest - i * step + rng.uniform(-0.15, 0.15) * step) for i in range(n)]
    elif traits.cadence == "seasonal":
        season = below(bits, 271)
        ages = (
            [newest]
            + [newest + (season + below(bits, 76)) % max(span, 1) for _ in range(n - 2)]
            + [oldest]
        )
    else:
        ages = [newest, oldest] + [newest + below(bits, span + 1) for _ in range(n - 2)]
    ages = [min(max(age, newest), oldest) for age in ages]
    ages[0], ages[-1] = oldest, newest
    return sorted(ages, reverse=True)


def _order_totals(traits: Traits, rng: random.Random) -> list[int]:
    n = traits.orders
    if n == 0:
        return []
    weights = [math.exp(rng.gauss(0, 0.35)) for _ in range(n)]
    target = traits.ltv_cents if traits.ltv_cents is not None else traits.aov_cents * n
    scale = target / sum(weights)
    totals = [max(1, round(w * scale)) for w in weights]
    if traits.ltv_cents is not None:
        totals[-1] += traits.ltv_cents - sum(totals)  # pinned totals add up exactly
        if totals[-1] < 1:
            totals = [traits.ltv_cents // n] * n
            totals[-1] += traits.ltv_cents - sum(totals)
    return totals


def _flags(count: int, share: float, rng: random.Random) -> list[bool]:
    chosen = set(rng.sample(range(count), round(share * count))) if count else set()
    return [i in chosen for i in range(count)]


# A product as an order draws it: price, whether it is sold one at a time, and the
# order line for each quantity from 1 to 4 (shared: lines are immutable).
_Stocked = tuple[int, bool, tuple[OrderItem, ...]]


@lru_cache(maxsize=8)
def _stock(seed: int) -> dict[str, tuple[_Stocked, ...]]:
    return {
        category: tuple(
            (
                p.price_cents,
                p.price_cents > 2500,
                tuple(
                    OrderItem(p.product_id, p.product_name, p.category, quantity, p.price_cents)
                    for quantity in range(1, 5)
                ),
            )
            for p in products_in(seed, category)
        )
        for category in CATEGORY_NAMES
    }


def _items(
    total_cents: int,
    categories: list[str],
    stock: dict[str, tuple[_Stocked, ...]],
    bits: Callable[[int], int],
) -> tuple[OrderItem, ...]:
    """Items worth roughly the order total (the rest is shipping, tax and discounts)."""
    items: list[OrderItem] = []
    spent = 0
    while len(items) < 6:
        # rng.choice(categories), rng.choice(shelf), rng.randint(1, 4), drawn alike
        shelf = stock[categories[below(bits, len(categories))]]
        price, single, lines = shelf[below(bits, len(shelf))]
        quantity = 1 if single else 1 + below(bits, 4)
        if items and spent + price * quantity > total_cents * 1.1:
            break
        items.append(lines[quantity - 1])
        spent += price * quantity
        if spent >= total_cents * 0.8:
            break
    return tuple(items)


class DrawnHistory:
    """A generated history, drawn in two steps.

    Orders' dates, totals, flags and categories come first, and they are all that
    metrics (so analyze, predict/churn and my-position) need; the order lines and the
    interactions, drawn next from the same generator, only when someone reads
    ``orders`` or ``interactions`` (or ages or extends the history). Drawn then or
    drawn at once, the history is the same: the generator is simply kept until then.
    Reads like a :class:`History` (``customer_id``, ``tenure_days``, ``metrics``,
    ``orders``, ``interactions``, ``aged``, ``with_facts``) and equals its whole one.
    """

    _lock = threading.Lock()  # the rest is drawn once, also under a threaded server

    def __init__(
        self,
        customer_id: str,
        tenure_days: int,
        traits: Traits,
        rng: random.Random,
        categories: list[str],
        orders: list[tuple[int, int, bool, bool]],
        seed: int,
    ) -> None:
        self.customer_id = customer_id
        self.tenure_days = tenure_days
        self._traits = traits
        self._categories = categories
        self._orders = orders  # (days ago, total, returned, discounted), oldest first
        # The seed, not its stock: the catalogue (and Faker) is only needed for order lines.
        self._rest: tuple[random.Random, int] | None = (rng, seed)
        self._full: History | None = None

    @cached_property
    def metrics(self) -> Metrics:
        from sandbox.personas.rules import metrics_from  # rules reads histories

        count = len(self._categories)
        return metrics_from(
            [
                # An order's lines all come from its one category, and there is always one.
                (age, total, returned, discounted, (self._categories[index % count],))
                for index, (age, total, returned, discounted) in enumerate(self._orders)
            ],
            self.tenure_days,
            # Support tickets are drawn within the last 90 days: all of them are recent.
            self._traits.support_tickets_90d,
        )

    def full(self) -> History:
        """The whole history: its order lines and interactions drawn on first call."""
        with self._lock:
            if self._full is None:
                assert self._rest is not None
                rng, seed = self._rest
                self._full = self._draw_rest(rng, _stock(seed))
                self._rest = None  # the generator's state is no longer needed
            return self._full

    def _draw_rest(self, rng: random.Random, stock: dict[str, tuple[_Stocked, ...]]) -> History:
        traits, categories = self._traits, self._categories
        count = len(categories)
        order_prefix = f"ord_{rng.getrandbits(32):08x}"
        orders = tuple(
            OrderFact(
                order_id=f"{order_prefix}_{index + 1:03d}",
                days_ago=age,
                total_cents=total,
                # Spread categories over orders so the customer really shops in all of them.
                items=_items(total, [categories[index % count]], stock, rng.getrandbits),
                returned=returned,
                discounted=discounted,
            )
            for index, (age, total, returned, discounted) in enumerate(self._orders)
        )
        interactions = [
            InteractionFact("support_ticket", rng.randint(0, 89), rng.choice(("email", "chat")))
            for _ in range(traits.support_tickets_90d)
        ]
        interactions += [
            InteractionFact("email_open", rng.randint(0, traits.tenure_days), "email")
            for _ in range(rng.randint(0, 3))
        ]
        return History(
            customer_id=self.customer_id,
            tenure_days=self.tenure_days,
            orders=orders,
            interactions=tuple(sorted(interactions, key=lambda i: -i.days_ago)),
        )

    @property
    def orders(self) -> tuple[OrderFact, ...]:
        return self.full().orders

    @property
    def interactions(self) -> tuple[InteractionFact, ...]:
        return self.full().interactions

    def aged(self, days: int) -> History | DrawnHistory:
        return self if days == 0 else self.full().aged(days)

    def with_facts(
        self, orders: tuple[OrderFact, ...] = (), interactions: tuple[InteractionFact, ...] = ()
    ) -> History | DrawnHistory:
        if not orders and not interactions:
            return self
        return self.full().with_facts(orders, interactions)

    def __repr__(self) -> str:
        return repr(self.full())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DrawnHistory):
            other = other.full()
        return self.full() == other

    def __hash__(self) -> int:
        return hash(self.full())


def generate_history(seed: int, tenant: str, customer_id: str, traits: Traits) -> DrawnHistory:
    rng = stable_rng(seed, tenant, customer_id, "history")
    category_count = min(max(traits.categories, 1), len(CATEGORY_NAMES))
    categories = rng.sample(CATEGORY_NAMES, category_count)
    if traits.order_log is not None:
        ages = [days for days, _ in traits.order_log]
        totals = [total for _, total in traits.order_log]
    else:
        ages = _order_ages(traits, rng)
        totals = _order_totals(traits, rng)
    returned = _flags(traits.orders, traits.return_rate, rng)
    discounted = _flags(traits.orders, traits.discount_share, rng)
    orders = list(zip(ages, totals, returned, discounted, strict=True))
    tenure_days = max(traits.tenure_days, *(ages or [0]))
    return DrawnHistory(customer_id, tenure_days, traits, rng, categories, orders, seed)
