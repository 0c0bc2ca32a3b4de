"""Words that follow from the numbers: communication guidance, churn factors, advice.

Every line here is chosen by a rule over metrics and segments, so the same customer
always gets the same words, and each word can be traced to the figure behind it.
"""

from __future__ import annotations

from typing import Any

from sandbox.personas.rules import ChurnTerms, Metrics, churn_terms


def communication_guidance(m: Metrics, segs: dict[str, str], churn: float) -> list[str]:
    tips: list[str] = []
    if segs["shopping_maturity"] == "new" or m.total_orders == 0:
        tips.append("New customer - keep it simple, avoid jargon and point to beginner resources")
    if segs["price_sensitivity"] == "deal_hunter":
        tips.append("Customer responds well to value propositions")
    elif segs["price_sensitivity"] == "full_price":
        tips.append("Lead with quality and craftsmanship rather than discounts")
    if segs["purchase_frequency"] in {"power_buyer", "frequent"}:
        tips.append("Frequent shopper - they know the store well")
    if segs["return_behavior"] == "frequent_returner":
        tips.append("Returns often - confirm colour, size and quality details before they buy")
    if segs["purchase_value"] == "premium":
        tips.append("High-value customer - offer priority treatment and a personal touch")
    if segs["shopping_cadence"] == "lapsed":
        tips.append("Has not purchased in months - reconnect before you sell")
    if churn >= 0.6:
        tips.append("High churn risk - acknowledge their history and make coming back easy")
    if m.recent_support_tickets:
        tips.append("Contacted support recently - check the open ticket before anything else")
    if segs["category_affinity"] == "multi_category":
        tips.append("Shops across categories - cross-category suggestions land well")
    elif segs["category_affinity"] == "single_category" and m.top_category:
        tips.append(f"Focused on {m.top_category} - keep suggestions in that lane")
    if segs["purchase_frequency"] == "one_time":
        tips.append("Bought once - a friendly follow-up can turn them into a repeat customer")
    return tips or ["Keep the tone friendly and helpful"]


def _impact(contribution: float) -> str:
    return "high" if contribution >= 1.0 else "medium" if contribution >= 0.4 else "low"


def churn_factors(m: Metrics) -> list[dict[str, Any]]:
    """The churn score's terms as the customer's own figures, strongest first."""
    terms = churn_terms(m)
    neutral = {
        "recency": 60 / 180,
        "infrequency": 0.5,
        "newness": 0.25,
        "returns": 0.1,
        "support": 0.0,
    }

    def direction(name: str) -> str:
        return "increases_risk" if getattr(terms, name) > neutral[name] else "decreases_risk"

    def weight(name: str) -> float:
        return abs(ChurnTerms.WEIGHTS[name] * (getattr(terms, name) - neutral[name]))

    factors = [
        ("days_since_last_purchase", m.days_since_last_purchase, "recency"),
        ("orders_per_year", round(m.orders_per_year, 2), "infrequency"),
        ("customer_tenure_days", m.customer_tenure_days, "newness"),
        ("return_rate", round(m.return_rate, 2), "returns"),
        ("recent_support_tickets", m.recent_support_tickets, "support"),
    ]
    rows = [
        {
            "factor": label,
            "value": value,
            "impact": _impact(weight(term)),
            "direction": direction(term),
            "_weight": weight(term),
        }
        for label, value, term in factors
    ]
    if m.orders_prior_180:
        decline = round((m.orders_last_180 - m.orders_prior_180) / m.orders_prior_180, 2)
        rows.append(
            {
                "factor": "purchase_frequency_decline",
                "value": decline,
                "impact": _impact(abs(decline) * 1.2),
                "direction": "increases_risk" if decline < 0 else "decreases_risk",
                "_weight": abs(decline) * 1.2,
            }
        )
    rows.sort(key=lambda row: (-row["_weight"], row["factor"]))
    for row in rows:
        del row["_weight"]
    return rows


def churn_recommendations(m: Metrics, level: str, factors: list[dict[str, Any]]) -> list[str]:
    advice: list[str] = []
    if level == "high":
        advice.append("Send re-engagement campaign within 7 days")
        advice.append("Offer a personal win-back incentive on their favourite category")
    elif level == "medium":
        advice.append("Schedule a check-in email within 14 days")
    else:
        advice.append("Keep the regular newsletter cadence; no intervention needed")
    risky = {f["factor"] for f in factors if f["direction"] == "increases_risk"}
    if "recent_support_tickets" in risky:
        advice.append("Resolve the open support ticket before any marketing contact")
    if "return_rate" in risky:
        advice.append("Review returned items for quality or description problems")
    if m.total_orders == 0:
        advice.append("Send a beginner welcome series with a first-purchase guide")
    return advice
