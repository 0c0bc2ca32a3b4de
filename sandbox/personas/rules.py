"""The documented rules: metrics, segments, churn and LTV, all computed from a history.

Nothing here draws random numbers. The README's "Persona rules" section states these
formulas; change both together.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # history.py caches metrics through this module
    from sandbox.personas.history import History

DAYS_PER_MONTH = 365.25 / 12
# Churn level thresholds, shared by analyze and predict/churn.
CHURN_MEDIUM_AT = 0.30
CHURN_HIGH_AT = 0.60
# Monthly spend assumed for a customer with no orders yet (in cents).
NEW_CUSTOMER_MONTHLY_CENTS = 800


# Metrics and churn terms are built for every new customer: named tuples, as a frozen
# dataclass pays a setattr per field.
class Metrics(NamedTuple):
    lifetime_value_cents: int
    total_orders: int
    avg_order_value_cents: int
    days_since_last_purchase: int
    customer_tenure_days: int
    returned_orders: int
    discounted_orders: int
    categories: int
    top_category: str | None
    orders_per_year: float
    recent_support_tickets: int
    gap_cv: float | None  # spread of days between orders (std/mean); None below 3 orders
    seasonal_share: float  # largest share of orders in any 90-day window of the year
    spend_last_365_cents: int
    orders_last_180: int
    orders_prior_180: int

    @property
    def return_rate(self) -> float:
        return self.returned_orders / self.total_orders if self.total_orders else 0.0

    @property
    def discount_share(self) -> float:
        return self.discounted_orders / self.total_orders if self.total_orders else 0.0


# For each day of the year, the 90-day windows (one starting every 15 days, wrapping at
# the year's end) that hold it: the seasonal share counts orders per window through this
# table instead of testing every order against every window.
_SEASON_STARTS = range(0, 365, 15)
_WINDOWS_HOLDING_DAY = tuple(
    tuple(w for w, start in enumerate(_SEASON_STARTS) if (day - start) % 365 < 90)
    for day in range(365)
)


# What metrics need of one order: days ago, total in cents, returned, discounted, and
# the categories of its lines (empty names ignored).
OrderFigures = tuple[int, int, bool, bool, Collection[str]]


def compute_metrics(history: History) -> Metrics:
    return metrics_from(
        [
            (o.days_ago, o.total_cents, o.returned, o.discounted, {i.category for i in o.items})
            for o in history.orders
        ],
        history.tenure_days,
        sum(
            1
            for i in history.interactions
            if i.interaction_type == "support_ticket" and i.days_ago < 90
        ),
    )


def metrics_from(
    orders: Sequence[OrderFigures], tenure_days: int, recent_support_tickets: int
) -> Metrics:
    """A history's metrics from its orders' figures (a generated history has them before
    its order lines are drawn: sandbox.personas.drawing.DrawnHistory)."""
    n = len(orders)
    ltv = spend_last_365 = returned = discounted = last_180 = prior_180 = 0
    category_counts: dict[str, int] = {}
    ages = []
    for age, total, was_returned, was_discounted, categories in orders:
        ages.append(age)
        ltv += total
        if age < 365:
            spend_last_365 += total
        if age < 180:
            last_180 += 1
        elif age < 360:
            prior_180 += 1
        if was_returned:
            returned += 1
        if was_discounted:
            discounted += 1
        for category in categories:
            if category:
                category_counts[category] = category_counts.get(category, 0) + 1
    ages.sort()
    tenure = max(tenure_days, ages[-1] if ages else 0)
    # A customer with no orders has gone without a purchase for their whole tenure.
    recency = ages[0] if ages else tenure
    top = min(category_counts, key=lambda c: (-category_counts[c], c)) if category_counts else None
    gaps = [b - a for a, b in zip(ages, ages[1:], strict=False)]
    gap_cv = None
    if len(gaps) >= 2 and sum(gaps) > 0:
        mean = sum(gaps) / len(gaps)
        gap_cv = math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps)) / mean
    # Largest share of orders in any 90-day window of the year (windows every 15 days).
    seasonal_share = 0.0
    if n:
        in_window = [0] * len(_SEASON_STARTS)
        for age in ages:
            for window in _WINDOWS_HOLDING_DAY[age % 365]:
                in_window[window] += 1
        seasonal_share = max(in_window) / n
    return Metrics(
        lifetime_value_cents=ltv,
        total_orders=n,
        avg_order_value_cents=round(ltv / n) if n else 0,
        days_since_last_purchase=recency,
        customer_tenure_days=tenure,
        returned_orders=returned,
        discounted_orders=discounted,
        categories=len(category_counts),
        top_category=top,
        orders_per_year=n / max(tenure, 30) * 365.25,
        recent_support_tickets=recent_support_tickets,
        gap_cv=gap_cv,
        seasonal_share=seasonal_share,
        spend_last_365_cents=spend_last_365,
        orders_last_180=last_180,
        orders_prior_180=prior_180,
    )


def segments(m: Metrics) -> dict[str, str]:
    """One value per behavioural axis, by the thresholds in the README."""
    n = m.total_orders
    if n == 0:
        return {
            "purchase_value": "none",
            "price_sensitivity": "unknown",
            "shopping_maturity": "new",
            "purchase_frequency": "none",
            "return_behavior": "no_history",
            "category_affinity": "none",
            "shopping_cadence": "none",
            "repurchase_behavior": "none",
        }
    ltv, aov = m.lifetime_value_cents / 100, m.avg_order_value_cents / 100
    if ltv >= 750 or (aov >= 100 and n >= 3):
        purchase_value = "premium"
    elif ltv >= 250:
        purchase_value = "mid_tier"
    else:
        purchase_value = "value"
    if m.discount_share >= 0.5:
        price_sensitivity = "deal_hunter"
    elif m.discount_share <= 0.15:
        price_sensitivity = "full_price"
    else:
        price_sensitivity = "balanced"
    tenure = m.customer_tenure_days
    maturity = (
        "new"
        if tenure < 90
        else "developing"
        if tenure < 365
        else "established"
        if tenure < 1095
        else "veteran"
    )
    if n == 1:
        frequency = "one_time"
    elif m.orders_per_year >= 9 and n >= 6:
        frequency = "power_buyer"
    elif m.orders_per_year >= 4:
        frequency = "frequent"
    else:
        frequency = "occasional"
    returns = (
        "careful_buyer"
        if m.return_rate <= 0.10
        else "occasional_returner"
        if m.return_rate <= 0.25
        else "frequent_returner"
    )
    affinity = (
        "single_category"
        if m.categories <= 1
        else "focused"
        if m.categories <= 3
        else "multi_category"
    )
    if m.days_since_last_purchase > 180:
        cadence = "lapsed"
    elif m.gap_cv is not None and m.gap_cv < 0.5:
        cadence = "regular"
    elif n >= 3 and m.seasonal_share >= 0.6:
        cadence = "seasonal"
    else:
        cadence = "irregular"
    if n == 1:
        repurchase = "one_time"
    elif n >= 5 and m.days_since_last_purchase <= 90:
        repurchase = "loyal"
    else:
        repurchase = "repeat"
    return {
        "purchase_value": purchase_value,
        "price_sensitivity": price_sensitivity,
        "shopping_maturity": maturity,
        "purchase_frequency": frequency,
        "return_behavior": returns,
        "category_affinity": affinity,
        "shopping_cadence": cadence,
        "repurchase_behavior": repurchase,
    }


def archetype_id(segs: dict[str, str]) -> str:
    if segs["purchase_value"] == "none":
        return f"arch_{segs['shopping_maturity']}_prospect"
    return f"arch_{segs['purchase_value']}_{segs['price_sensitivity']}"


def archetype_level(m: Metrics) -> str:
    """How much evidence the archetype rests on: L1 (under 3 orders) to L5 (100+)."""
    n = m.total_orders
    return "L1" if n < 3 else "L2" if n < 20 else "L3" if n < 50 else "L4" if n < 100 else "L5"


class ChurnTerms(NamedTuple):
    """The churn score's inputs, each already scaled; the score is their logistic sum."""

    recency: float
    infrequency: float
    newness: float
    returns: float
    support: float

    WEIGHTS = {"recency": 2.2, "infrequency": 1.6, "newness": 0.4, "returns": 1.0, "support": 0.6}
    BIAS = -2.6

    def contribution(self, name: str) -> float:
        return self.WEIGHTS[name] * getattr(self, name)


def churn_terms(m: Metrics) -> ChurnTerms:
    tenure = m.customer_tenure_days
    return ChurnTerms(
        recency=min(m.days_since_last_purchase / 180, 2.0),
        infrequency=1 / (1 + m.orders_per_year / 4),
        newness=1.0 if tenure < 60 else 0.5 if tenure < 365 else 0.0,
        returns=m.return_rate,
        support=min(m.recent_support_tickets / 3, 1.0),
    )


def churn_risk(m: Metrics) -> float:
    terms = churn_terms(m)
    z = ChurnTerms.BIAS + sum(terms.contribution(name) for name in ChurnTerms.WEIGHTS)
    return round(1 / (1 + math.exp(-z)), 2)


def churn_risk_level(score: float) -> str:
    if score >= CHURN_HIGH_AT:
        return "high"
    if score >= CHURN_MEDIUM_AT:
        return "medium"
    return "low"


def monthly_run_rate_cents(m: Metrics) -> float:
    if m.total_orders == 0:
        return NEW_CUSTOMER_MONTHLY_CENTS
    if m.customer_tenure_days >= 365:
        return m.spend_last_365_cents / 12
    # A young customer's spend is spread over a year, not extrapolated from a few weeks.
    return m.lifetime_value_cents / 12


def forecast_cents(m: Metrics, horizon_months: int, churn: float | None = None) -> int:
    """Expected spend over the horizon: run rate, discounted by monthly survival.
    ``churn``: the customer's :func:`churn_risk`, when the caller has it already."""
    if churn is None:
        churn = churn_risk(m)
    survival = (1 - min(churn, 0.99)) ** (1 / 12)
    rate = monthly_run_rate_cents(m)
    # A customer who spent nothing last year still has a small chance to come back.
    rate = max(rate, NEW_CUSTOMER_MONTHLY_CENTS / 4)
    return round(rate * sum(survival**k for k in range(1, horizon_months + 1)))


def confidence_interval_cents(m: Metrics, forecast: int) -> tuple[int, int]:
    """95 % band: narrower with more orders to learn from."""
    width = 0.15 + 0.6 / math.sqrt(m.total_orders + 1)
    return max(0, math.floor(forecast * (1 - min(width, 0.95)))), math.ceil(forecast * (1 + width))


def trailing_spend_cents(history: History, horizon_months: int) -> int:
    window = horizon_months * DAYS_PER_MONTH
    return sum(o.total_cents for o in history.orders if o.days_ago < window)
