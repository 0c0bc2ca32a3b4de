"""Messages and actions: deterministic, persona-aware, and shaped by channel and length."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.personas.generation import (
    LENGTH_WORDS,
    SMS_LIMIT,
    generate_message,
    recommend_actions,
)

GOALS = ["resolve_support_issue", "nurture_lead", "upsell", "win_back", "generic_communication"]
CHANNELS = ["email", "sms", "chat", "phone_script"]
TONES = ["empathetic", "professional", "casual"]
LENGTHS = ["short", "medium", "long"]
AXES = {
    "purchase_value": ["premium", "mid_tier", "value", "none"],
    "price_sensitivity": ["deal_hunter", "balanced", "full_price", "unknown"],
    "shopping_maturity": ["new", "developing", "established", "veteran"],
    "purchase_frequency": ["power_buyer", "frequent", "occasional", "one_time", "none"],
    "return_behavior": ["careful_buyer", "occasional_returner", "frequent_returner", "no_history"],
    "shopping_cadence": ["regular", "seasonal", "irregular", "lapsed", "none"],
}
profiles = st.fixed_dictionaries(
    {"customer_id": st.just("c1")},
    optional={
        "archetype": st.fixed_dictionaries(
            {},
            optional={
                "segments": st.fixed_dictionaries(
                    {}, optional={axis: st.sampled_from(values) for axis, values in AXES.items()}
                )
            },
        ),
        "churn_risk": st.floats(0, 1),
    },
)
contexts = st.fixed_dictionaries(
    {"goal": st.sampled_from(GOALS), "channel": st.sampled_from(CHANNELS)},
    optional={
        "constraints": st.fixed_dictionaries(
            {}, optional={"tone": st.sampled_from(TONES), "length": st.sampled_from(LENGTHS)}
        ),
        "conversation": st.lists(
            st.fixed_dictionaries(
                {"from": st.sampled_from(["customer", "agent"]), "content": st.text(max_size=60)}
            ),
            max_size=3,
        ),
    },
)


@settings(max_examples=150, deadline=None)
@given(profile=profiles, context=contexts)
def test_message_shape_follows_channel_and_length(profile, context):
    result = generate_message(profile, context)
    assert result == generate_message(profile, context)
    text = result["message"]
    constraints = context.get("constraints", {})
    assert result["tone"] == constraints.get("tone", "professional")
    assert result["channel"] == context["channel"]
    if context["channel"] == "sms":
        assert len(text) <= SMS_LIMIT
    else:
        low, high = LENGTH_WORDS[constraints.get("length", "medium")]
        assert low <= len(text.split()) <= high, (len(text.split()), text)
    if context["channel"] == "email":
        first, *_, last = text.split("\n\n")
        assert first.endswith((",", "!")) and "\n" in last
    if context["channel"] == "phone_script":
        assert text.startswith("AGENT: ") and "[PAUSE" in text
    if context["channel"] == "chat":
        assert all(len(turn.split()) <= 25 for turn in text.split("\n"))


@settings(max_examples=150, deadline=None)
@given(profile=profiles, context=contexts)
def test_every_adaptation_traces_to_a_profile_field(profile, context):
    segments = (profile.get("archetype") or {}).get("segments") or {}
    for adaptation in generate_message(profile, context)["personalization_applied"]:
        field, value = re.search(r"\((\w+): ([^)]+)\)$", adaptation).groups()
        if field == "churn_risk":
            assert float(value) == profile["churn_risk"]
        else:
            assert segments[field] == value


def test_answers_the_topic_of_the_last_customer_message():
    context = {
        "goal": "resolve_support_issue",
        "channel": "email",
        "conversation": [
            {"from": "customer", "content": "Where is my refund?"},
            {"from": "agent", "content": "Checking."},
            {"from": "customer", "content": "Also the fabric arrived damaged."},
        ],
    }
    assert "damaged item" in generate_message({}, context)["message"]


def test_beginner_gets_the_documented_adaptations():
    profile = {"archetype": {"segments": {"shopping_maturity": "new"}}}
    applied = generate_message(profile, {"goal": "nurture_lead", "channel": "email"})[
        "personalization_applied"
    ]
    assert "Adjusted for beginner (shopping_maturity: new)" in applied


@pytest.mark.parametrize(
    "change",
    [
        {"goal": "win_back"},
        {"channel": "chat"},
        {"constraints": {"tone": "casual"}},
        {"constraints": {"length": "long"}},
    ],
)
def test_changing_goal_tone_channel_or_length_changes_the_message(change):
    base = {
        "goal": "upsell",
        "channel": "email",
        "constraints": {"tone": "professional", "length": "medium"},
    }
    changed = {**base, **change}
    if "constraints" in change:
        changed["constraints"] = {**base["constraints"], **change["constraints"]}
    assert generate_message({}, base)["message"] != generate_message({}, changed)["message"]


SCENARIOS = ["support_ticket", "sales_opportunity", "marketing_campaign", "retention_risk"]


@settings(max_examples=150, deadline=None)
@given(
    churn=st.floats(0, 1),
    ltv=st.floats(0, 100000).map(lambda x: round(x, 2)),
    scenario=st.sampled_from(SCENARIOS),
    subject=st.sampled_from(
        [
            "",
            "Package arrived damaged",
            "Late delivery",
            "Refund please",
            "Billing question",
            "Hello",
        ]
    ),
    priority=st.sampled_from(["urgent", "high", "normal", "low"]),
)
def test_actions_rules(churn, ltv, scenario, subject, priority):
    profile = {"customer_id": "c", "churn_risk": churn, "lifetime_value": ltv}
    context = {"ticket": {"subject": subject, "priority": priority}}
    result = recommend_actions(profile, scenario, context)
    assert result == recommend_actions(profile, scenario, context)
    assert [a["priority"] for a in result["actions"]] == list(range(1, len(result["actions"]) + 1))
    for action in result["actions"]:
        impact = action.get("estimated_impact")
        if impact:
            assert impact["revenue_at_risk"] == round(churn * ltv, 2)
            assert 0 <= impact["retention_probability"] <= 1
    assert (churn >= 0.7) == any("churn" in w for w in result["warnings"])
    assert (round(churn * ltv, 2) >= 500) == any("Revenue at risk" in w for w in result["warnings"])
    assert result["talking_points"]
    if scenario == "support_ticket" and "damaged" in subject.lower():
        assert any("replacement" in a["action"] for a in result["actions"])


def test_reference_arithmetic():
    result = recommend_actions({"churn_risk": 0.65, "lifetime_value": 1200}, "retention_risk", {})
    impacts = [a["estimated_impact"] for a in result["actions"] if "estimated_impact" in a]
    assert impacts and impacts[0]["revenue_at_risk"] == 780.0


def test_actions_read_the_full_analysis_shape_too():
    profile = {"predictions": {"churn_risk": 0.8}, "behavioral_metrics": {"lifetime_value": 1000}}
    result = recommend_actions(profile, "retention_risk", {})
    assert result["actions"][0]["estimated_impact"]["revenue_at_risk"] == 800.0
