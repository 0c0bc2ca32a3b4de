"""Deterministic stand-ins for AI drafts and next-best actions (no network, no model).

Messages are assembled from templates chosen by goal, channel, tone and length, then
adapted to the profile; every adaptation is named in ``personalization_applied``.
Actions follow per-scenario rules over the profile and context.
"""

from __future__ import annotations

import re
from typing import Any

SMS_LIMIT = 160
# openapi.yaml's default for context.channel (tests/test_reference_examples.py holds
# the two together): the integration guide's most common channel.
DEFAULT_CHANNEL = "email"
# Word bands per length (inclusive), for every channel but sms.
LENGTH_WORDS = {"short": (10, 60), "medium": (60, 150), "long": (150, 320)}

_TOPICS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "damaged",
        ("damaged", "broken", "torn", "defect", "ripped"),
        "the damaged item in your order",
    ),
    ("late", ("late", "delay", "shipping", "delivery", "arrive", "tracking"), "your delivery"),
    ("refund", ("refund", "return", "money back", "exchange"), "your refund"),
    ("billing", ("billing", "charge", "charged", "invoice", "payment"), "the billing question"),
    ("order", ("order", "purchase"), "your order"),
)

_GREETINGS = {
    "empathetic": "Hi there,",
    "professional": "Dear customer,",
    "casual": "Hey there!",
}
_SIGN_OFFS = {
    "empathetic": "Warm wishes,\nThe Customer Care Team",
    "professional": "Kind regards,\nCustomer Support",
    "casual": "Cheers,\nThe Team",
}
_OPENERS = {
    "empathetic": "I'm so sorry about {topic}, and I understand how frustrating this must be.",
    "professional": "Thank you for contacting us about {topic}.",
    "casual": "Thanks for reaching out about {topic}!",
}
_GOAL_LINES = {
    "resolve_support_issue": [
        "I have looked into it and I am taking care of it for you right now.",
        "You will get a confirmation email with the details within one business day.",
        "If anything still looks wrong after that, just reply and I will follow up myself.",
        "We want every project you start with us to go smoothly from the first cut.",
        "I have also added a note to your account so anyone on the team can help quickly.",
    ],
    "nurture_lead": [
        "Here are a few ideas that match what you have been looking at.",
        "Many quilters start with a small project to get a feel for the fabrics.",
        "Our free guides walk through each step with photos and tips.",
        "When you are ready, we are happy to help you choose materials.",
        "There is no rush; take the time you need to plan your project.",
    ],
    "upsell": [
        "Based on your recent projects, you might enjoy our newest collection.",
        "It pairs well with the supplies you already have.",
        "Customers with similar projects often add a matching pattern or kit.",
        "I have set aside a few suggestions for you to browse.",
        "Let me know if you would like a recommendation for your next project.",
    ],
    "win_back": [
        "It has been a while, and we have missed seeing you in the shop.",
        "A lot has arrived since your last visit, including new fabrics and kits.",
        "We would love to help with whatever you are working on next.",
        "Your account is ready whenever you want to pick up where you left off.",
        "Reply to this message if there is anything we could have done better.",
    ],
    "generic_communication": [
        "We wanted to share a quick update with you.",
        "Everything about your account is in good order.",
        "You can always reach us by replying to this message.",
        "We appreciate you being part of our community of makers.",
        "Thank you for choosing us for your projects.",
    ],
}
_PADDING = [
    "Our team reads every message and answers as quickly as we can.",
    "You can also find tutorials, project ideas and care instructions on our website.",
    "We stand behind everything we sell, from fat quarters to machines.",
    "Many of our staff are quilters too, so feel free to ask for project advice.",
    "We are grateful for customers like you who keep our little shop going.",
    "If you prefer, we can also continue this conversation by phone.",
    "Thank you again for your patience while we sort this out together.",
    "We will keep your preferences on file so next time is even easier.",
]


def _topic(conversation: list[dict[str, Any]]) -> tuple[str, str]:
    last = next(
        (
            turn.get("content", "")
            for turn in reversed(conversation)
            if turn.get("from") == "customer"
        ),
        "",
    ).lower()
    for name, words, phrase in _TOPICS:
        if any(re.search(rf"\b{re.escape(word)}", last) for word in words):
            return name, phrase
    return "general", "your message"


def _segments(profile: dict[str, Any]) -> dict[str, Any]:
    archetype = profile.get("archetype") or {}
    return dict(archetype.get("segments") or {}) if isinstance(archetype, dict) else {}


def _metric(profile: dict[str, Any], name: str) -> Any:
    metrics = profile.get("behavioral_metrics") or {}
    predictions = profile.get("predictions") or {}
    if name in profile:
        return profile[name]
    if name == "churn_risk":
        return predictions.get("churn_risk")
    return metrics.get(name)


def _personal_lines(profile: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Sentences adapted to the profile, each with the adaptations it records.

    Every adaptation names the profile field (and value) that caused it, so a client
    can trace it back to what it sent.
    """
    segs = _segments(profile)
    lines: list[tuple[str, list[str]]] = []
    if segs.get("shopping_maturity") == "new":
        lines.append(
            (
                "If you are just getting started, our beginner guide explains every step.",
                [
                    "Adjusted for beginner (shopping_maturity: new)",
                    "Avoided jargon (shopping_maturity: new)",
                ],
            )
        )
    if segs.get("price_sensitivity") == "deal_hunter":
        lines.append(
            (
                "As a thank-you, there is a member discount waiting in your account.",
                ["Mentioned value offer (price_sensitivity: deal_hunter)"],
            )
        )
    if segs.get("purchase_value") == "premium":
        lines.append(
            (
                "As one of our most valued customers, you have priority support with us.",
                ["Acknowledged high value (purchase_value: premium)"],
            )
        )
    frequency = segs.get("purchase_frequency")
    if frequency in {"power_buyer", "frequent"}:
        lines.append(
            (
                "You know our shop well, so we will skip the basics.",
                [f"Skipped basics for a regular (purchase_frequency: {frequency})"],
            )
        )
    if segs.get("return_behavior") == "frequent_returner":
        lines.append(
            (
                "We double-checked colour and size details so everything arrives right.",
                ["Reassured on quality (return_behavior: frequent_returner)"],
            )
        )
    if segs.get("shopping_cadence") == "lapsed":
        lines.append(
            (
                "It has been a little while since your last order, and we have missed you.",
                ["Acknowledged time away (shopping_cadence: lapsed)"],
            )
        )
    churn = _metric(profile, "churn_risk")
    if isinstance(churn, int | float) and not isinstance(churn, bool) and churn >= 0.6:
        lines.append(
            (
                "Your loyalty means a lot to us, and we want to make this right.",
                [f"Emphasised retention (churn_risk: {churn})"],
            )
        )
    return lines


def _render(channel: str, tone: str, sentences: list[str]) -> str:
    greeting = _GREETINGS[tone]
    if channel == "email":
        return "\n\n".join([greeting, " ".join(sentences), _SIGN_OFFS[tone]])
    if channel == "phone_script":
        turns = [f"AGENT: {greeting} {sentences[0]}", "[PAUSE - let the customer respond]"]
        turns += [f"AGENT: {sentence}" for sentence in sentences[1:]]
        return "\n".join(turns)
    return "\n".join(sentences)  # chat: one short turn per line


def _word_count(text: str) -> int:
    return len(text.split())


def _render_within_band(channel: str, tone: str, core: list[str], length: str) -> str:
    """Render, then drop or pad sentences until the whole message is inside the band."""
    low, high = LENGTH_WORDS[length]
    sentences = list(core)
    while len(sentences) > 1 and _word_count(_render(channel, tone, sentences)) > high:
        sentences.pop()
    padding = iter(_PADDING)
    while _word_count(_render(channel, tone, sentences)) < low:
        candidate = [*sentences, next(padding)]
        if _word_count(_render(channel, tone, candidate)) > high:
            break
        sentences = candidate
    return _render(channel, tone, sentences)


def _sms(opener: str, goal_line: str, personal: list[str]) -> str:
    """The richest combination that fits one SMS: personal touch first, then the goal."""
    candidates = [
        [opener, *personal[:1], goal_line],
        [opener, *personal[:1]],
        [opener, goal_line],
        [opener],
    ]
    for parts in candidates:
        text = " ".join(parts)
        if len(text) <= SMS_LIMIT:
            return text
    return opener[: SMS_LIMIT - 1].rsplit(" ", 1)[0] + "…"


def generate_message(profile: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    goal, channel = context["goal"], context.get("channel", DEFAULT_CHANNEL)
    constraints = context.get("constraints") or {}
    tone = constraints.get("tone", "professional")
    length = constraints.get("length", "medium")
    _, topic = _topic(context.get("conversation") or [])
    adapted = _personal_lines(profile)
    personal = [sentence for sentence, _ in adapted]
    opener = _OPENERS[tone].format(topic=topic)
    goal_lines = _GOAL_LINES[goal]
    if channel == "sms":
        text = _sms(opener, goal_lines[0], personal)
    else:
        if length == "short":
            core = [opener, goal_lines[0], *personal[:1]]
        else:
            body_count = 3 if length == "medium" else 5
            core = [opener, *personal, *goal_lines[:body_count]]
        text = _render_within_band(channel, tone, core, length)
    return {
        "message": text,
        "tone": tone,
        "channel": channel,
        # Only what made it into the message: length limits may drop a sentence.
        "personalization_applied": [
            adaptation
            for sentence, adaptations in adapted
            if sentence in text
            for adaptation in adaptations
        ],
    }


_TICKET_RULES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (
        ("damaged", "broken", "defect", "torn"),
        "Ship a free replacement today",
        "The customer reports a damaged item; replacing it fast protects the relationship.",
    ),
    (
        ("late", "delay", "shipping", "delivery", "tracking"),
        "Share live tracking and upgrade shipping on the next order",
        "Delivery problems are the top reason customers leave after an order.",
    ),
    (
        ("refund", "return", "exchange"),
        "Process the refund without asking for a return",
        "A quick, generous refund costs less than losing the customer.",
    ),
    (
        ("billing", "charge", "invoice", "payment"),
        "Review the charge and confirm the correction in writing",
        "Billing errors erode trust; a written confirmation closes the loop.",
    ),
)


def recommend_actions(
    profile: dict[str, Any], scenario: str, context: dict[str, Any]
) -> dict[str, Any]:
    churn = _metric(profile, "churn_risk")
    ltv = _metric(profile, "lifetime_value")
    churn = float(churn) if isinstance(churn, int | float) else 0.5
    ltv = float(ltv) if isinstance(ltv, int | float) else 0.0
    revenue_at_risk = round(churn * ltv, 2)
    impact = {
        "retention_probability": round(min(max(1 - churn * 0.6, 0.0), 1.0), 2),
        "revenue_at_risk": revenue_at_risk,
    }
    actions: list[dict[str, Any]] = []
    warnings: list[str] = []
    talking: list[str] = []

    def add(action: str, reasoning: str, with_impact: bool = False) -> None:
        entry: dict[str, Any] = {"action": action, "reasoning": reasoning}
        if with_impact:
            entry["estimated_impact"] = dict(impact)
        actions.append(entry)

    if scenario == "support_ticket":
        ticket = (context or {}).get("ticket") or {}
        subject = str(ticket.get("subject") or "").lower()
        matched = False
        for words, action, reasoning in _TICKET_RULES:
            if any(word in subject for word in words):
                add(action, reasoning, with_impact=True)
                matched = True
        if not matched:
            add("Answer the ticket within 4 hours", "Fast first responses raise satisfaction.")
        if ticket.get("priority") in {"urgent", "high"}:
            add("Escalate to a senior agent", f"Ticket priority is {ticket['priority']}.")
        talking += ["Thank them for their patience", "Confirm the fix and the timeline"]
    elif scenario == "sales_opportunity":
        add(
            "Recommend a project kit matched to their history",
            "Kits raise order value for customers who already buy supplies.",
            True,
        )
        add("Offer a follow-up call", "Personal contact converts considered purchases.")
        talking += ["Ask about their next project", "Mention what similar makers bought"]
    elif scenario == "marketing_campaign":
        add(
            "Include in the seasonal collection email",
            "Seasonal launches drive the most repeat orders.",
            True,
        )
        if churn < 0.3:
            add("Invite to the loyalty programme", "Low-risk customers respond to recognition.")
        talking += ["Lead with new arrivals", "Keep the offer simple"]
    else:  # retention_risk
        add(
            "Send a personal win-back offer within 7 days",
            "Recent inactivity signals churn; a timely offer recovers many customers.",
            True,
        )
        add("Call if there is no response in a week", "A second channel lifts recovery rates.")
        talking += ["Acknowledge how long they have been a customer", "Ask what would help"]

    if churn >= 0.7:
        actions.insert(
            0,
            {
                "action": "Treat as retention-critical: respond personally today",
                "reasoning": f"Churn risk is {churn:.2f}.",
                "estimated_impact": dict(impact),
            },
        )
        warnings.append(f"High churn risk ({churn:.0%})")
    if revenue_at_risk >= 500:
        warnings.append(f"Revenue at risk: ${revenue_at_risk:,.2f}")
    if ltv >= 1000:
        talking.insert(0, "Recognise them as a valued long-time customer")
    numbered = [
        {"action": a["action"], "priority": priority, "reasoning": a["reasoning"]}
        | ({"estimated_impact": a["estimated_impact"]} if "estimated_impact" in a else {})
        for priority, a in enumerate(actions, start=1)
    ]
    return {"actions": numbered, "warnings": warnings, "talking_points": talking}
