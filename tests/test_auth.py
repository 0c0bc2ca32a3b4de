from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.app import create_app
from sandbox.auth import KeyFileError, load_keyring, redact
from sandbox.resources import fixtures_dir

ANALYZE = "/api/intelligence/analyze"
INGEST = "/api/data/ingest_orders"
ORDER = {
    "customer_id": "c1",
    "order_id": "o-auth-1",
    "order_date": "2024-01-15T10:30:00Z",
    "total_price": 10.0,
}


def call(client, key, path=ANALYZE, body=None):
    headers = {} if key is None else {"X-API-Key": key}
    return client.post(path, json=body or {"customer_id": "test_customer_new"}, headers=headers)


@pytest.mark.parametrize(
    "key",
    [
        "qpk_test_sandbox",
        "qpk_live_abc123xyz",
        "test_key_12345",
        "qpk_test_readonly",
        "qpk_test_acme",
    ],
)
def test_default_keys_read(client, key):
    assert call(client, key).status_code == 200


@pytest.mark.parametrize(
    "key", [None, "", "qpk_test_nope", "QPK_TEST_SANDBOX", "qpk_test_sandbox "]
)
def test_missing_or_unknown_key_is_401(client, key):
    response = call(client, key)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "INVALID_API_KEY"


def test_expired_key_says_it_expired(client):
    response = call(client, "qpk_test_expired")
    assert response.status_code == 401
    assert "expired" in response.get_json()["error"]["message"]


def test_every_api_route_needs_a_key(client, contract):
    for op in contract.operations.values():
        path = op.path.replace("{industry}", "retail")
        response = client.open(path, method=op.method, json={})
        assert response.status_code == 401, op.operation_id


def test_read_only_key_cannot_ingest(client):
    response = call(client, "qpk_test_readonly", INGEST, {"source": "t", "orders": [ORDER]})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "INSUFFICIENT_PERMISSIONS"
    response = call(client, "qpk_test_sandbox", INGEST, {"source": "t", "orders": [ORDER]})
    assert response.status_code == 200


def test_auth_comes_before_body_validation(client):
    response = client.post(ANALYZE, data="{", content_type="application/json")
    assert response.status_code == 401


def test_extra_keys_file_adds_and_overrides(tmp_path: Path):
    keys = tmp_path / "keys.yaml"
    keys.write_text(
        "tenants: {bobs_bikes: {industry: outdoor}}\n"
        "keys:\n"
        "  qpk_test_bob: {tenant: bobs_bikes, permissions: [read]}\n"
        "  qpk_test_sandbox: {tenant: linda_quilting, status: revoked}\n"
    )
    client = create_app(keys=keys).test_client()
    assert call(client, "qpk_test_bob").status_code == 200
    revoked = call(client, "qpk_test_sandbox")
    assert revoked.status_code == 401 and "revoked" in revoked.get_json()["error"]["message"]
    assert call(client, "qpk_test_acme").status_code == 200
    position = client.get("/api/insights/my-position", headers={"X-API-Key": "qpk_test_bob"})
    assert position.get_json()["industry"] == "outdoor"


@pytest.mark.parametrize(
    "text",
    [
        "keys: [1, 2]",
        "nope: {}",
        "keys: {k: {permissions: [read]}}",
        "keys: {k: {tenant: t, permissions: [admin]}}",
        "keys: {k: {tenant: t, status: lost}}",
        "keys: {k: [unclosed",
    ],
)
def test_malformed_keys_file_is_a_clear_error(tmp_path: Path, text: str):
    keys = tmp_path / "keys.yaml"
    keys.write_text(text)
    with pytest.raises(KeyFileError, match=str(keys)):
        load_keyring(fixtures_dir() / "keys.yaml", keys)


def test_redact_never_reveals_a_whole_key():
    assert redact("qpk_test_sandbox") == "qpk_test…"
    assert redact("short") == "…"
    assert redact(None) is None
