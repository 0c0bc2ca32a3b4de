"""Generated customers' answers, pinned byte for byte.

The golden files pin the magic customers; a random id's history is drawn, and speed work
on the drawing (fewer calls, shared objects) must not change a single draw. So the bytes
of a few hundred random customers' answers are pinned here as digests, and so are their
histories themselves: order lines and email opens reach no answer today, but they are
drawn from the same generator as everything else and are the model's data. A change on
purpose (a new rule, a Python whose ``random`` draws differently) updates these digests
together with the golden files, after reviewing the diff.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from sandbox.app import create_app
from sandbox.personas.model import CustomerModel, load_magic_customers
from sandbox.personas.rules import compute_metrics
from sandbox.resources import fixtures_dir

IDS = [f"bench_{(n * 7919 + 13) % 1_000_000}" for n in range(300)]
KEYS = {"linda_quilting": "qpk_test_sandbox", "acme_outdoor": "qpk_test_acme"}
PINNED = {
    (
        0,
        "linda_quilting",
        "analyzeCustomer",
    ): "016e339215bb37033489f6be41e73f23e9f45459d34cfc32c3bd3ee48dedad17",
    (
        0,
        "linda_quilting",
        "predictChurn",
    ): "26738561339604ba43ceaf7e74fe713a3a408dc507a5e01c39ecb0a9a50661ea",
    (
        0,
        "linda_quilting",
        "predictLtv",
    ): "89a4a096d5b1ce7380d61435350cc006eb8f6bffec2a5e4504dbf46c6f1a3db0",
    (
        0,
        "acme_outdoor",
        "analyzeCustomer",
    ): "b3ef56a91fee273177b35e0ca77ff8fab41b362b653ead5d76e658fdc0d26457",
    (
        7,
        "linda_quilting",
        "analyzeCustomer",
    ): "55483acaeb5b9e22a6db60df9bab82da3c8dad50570093e56fe258177952636f",
}
OPERATIONS = {
    "analyzeCustomer": ("/api/intelligence/analyze", {"context": {}}),
    "predictChurn": ("/api/intelligence/predict/churn", {}),
    "predictLtv": ("/api/intelligence/predict/ltv", {"horizon_months": 24}),
}


def answers_digest(client, tenant: str, operation_id: str) -> str:
    path, extra = OPERATIONS[operation_id]
    digest = hashlib.sha256()
    for customer_id in IDS:
        response = client.post(
            path,
            data=json.dumps({"customer_id": customer_id, **extra}),
            headers={"X-API-Key": KEYS[tenant], "Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.data
        digest.update(response.data)
        digest.update(b"\n")
    return digest.hexdigest()


HISTORIES_PINNED = "d6bb97a8445793ebb077c762ec533da9574e80c1baab8a2f8c605be67cbd05cf"


def test_random_customers_histories_are_pinned():
    model = CustomerModel(0, {})
    digest = hashlib.sha256()
    for customer_id in IDS:
        digest.update(repr(model.history("linda_quilting", customer_id)).encode())
    assert digest.hexdigest() == HISTORIES_PINNED, (
        "generated histories changed (orders, their lines, interactions): if on purpose, "
        "update HISTORIES_PINNED"
    )


@pytest.fixture(scope="module")
def clients():
    return {seed: create_app(seed=seed, rate_limit="off").test_client() for seed in (0, 7)}


@pytest.mark.parametrize(("seed", "tenant", "operation_id"), list(PINNED))
def test_random_customers_answer_the_pinned_bytes(clients, seed, tenant, operation_id):
    assert (
        answers_digest(clients[seed], tenant, operation_id) == PINNED[(seed, tenant, operation_id)]
    ), (
        f"{operation_id} for random customers (seed {seed}, {tenant}) changed bytes: if on "
        "purpose, review a diff of the answers and update PINNED and the golden files"
    )


def test_metrics_before_the_order_lines_are_drawn_match_the_whole_history():
    # A generated history's metrics come from its orders' figures before the lines and
    # interactions are drawn; drawn out, the same history must give the same metrics.
    magic = load_magic_customers(fixtures_dir() / "customers.yaml")
    model = CustomerModel(0, magic, cache_size=10)
    customers = [c for c, entry in magic.items() if entry.traits is not None] + IDS
    for tenant in ("linda_quilting", "acme_outdoor"):
        for customer_id in customers:
            history = model.history(tenant, customer_id)
            early = history.metrics  # nothing else drawn yet
            assert early == compute_metrics(history.full()), (tenant, customer_id)
