"""Same request, same bytes: across calls, processes and restarts; seeds change data."""

from __future__ import annotations

from tests.conftest import ServerProcess

RANDOM_IDS = [f"cust_{(i * 7919) % 100003:05d}" for i in range(200)]
REQUESTS = [
    ("/api/intelligence/analyze", {"customer_id": cid})
    for cid in [
        *RANDOM_IDS,
        "test_customer_high_ltv",
        "test_customer_low_ltv",
        "test_customer_new",
        "cust_1",
        "cust_2",
        "alice@example.com",
        "Ωmega-42",
    ]
] + [
    ("/api/intelligence/predict/churn", {"customer_id": "cust_1"}),
    ("/api/intelligence/predict/ltv", {"customer_id": "cust_1", "horizon_months": 24}),
    (
        "/api/generation/message",
        {
            "customer_profile": {"customer_id": "cust_1"},
            "context": {"goal": "upsell", "channel": "email"},
        },
    ),
    (
        "/api/generation/actions",
        {
            "customer_profile": {"churn_risk": 0.65, "lifetime_value": 1200},
            "scenario": "retention_risk",
        },
    ),
]
GETS = ["/api/insights/benchmarks/retail", "/api/insights/my-position"]


def snapshot(server: ServerProcess) -> list[bytes]:
    bodies = []
    for path, body in REQUESTS:
        response = server.post(path, body)
        assert response.status_code == 200, response.text
        bodies.append(response.content)
    for path in GETS:
        response = server.get(path)
        assert response.status_code == 200, response.text
        bodies.append(response.content)
    return bodies


def test_two_processes_with_one_seed_answer_byte_identically():
    # Fresh servers: the session server holds other tests' ingested orders.
    with ServerProcess("--seed", "7", "--rate-limit", "off", env={"PYTHONHASHSEED": "1"}) as one:
        first = snapshot(one)
        assert snapshot(one) == first
    with ServerProcess(
        "--seed", "7", "--rate-limit", "off", env={"PYTHONHASHSEED": "12345"}
    ) as other:
        assert snapshot(other) == first


def test_another_seed_gives_other_customers():
    with (
        ServerProcess("--seed", "7", "--rate-limit", "off") as one,
        ServerProcess("--seed", "8", "--rate-limit", "off") as other,
    ):
        ours, theirs = snapshot(one), snapshot(other)
    # Random ids change; the benchmarks fixture does not.
    assert sum(a != b for a, b in zip(ours[:200], theirs[:200], strict=True)) >= 190
    assert ours[-2] == theirs[-2]
