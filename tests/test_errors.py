"""Every failure answers in the documented envelope, with the documented status and code."""

from __future__ import annotations

import json

import pytest
import requests

from sandbox.app import create_app
from sandbox.errors import ApiError

ANALYZE = "/api/intelligence/analyze"


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert set(body["error"]) <= {"code", "message", "details"}
    return body["error"]


def test_validation_error_lists_every_problem_as_json_pointer(client, auth):
    body = {
        "customer_id": 5,
        "context": {"orders": [{"order_id": "o1", "order_date": "yesterday", "total_price": -1}]},
    }
    error = assert_envelope(client.post(ANALYZE, json=body, headers=auth), 422, "VALIDATION_ERROR")
    paths = {(e["path"], e["message"].split(" ")[0]) for e in error["details"]["errors"]}
    assert ("/customer_id", "5") in paths
    assert any(p == "/context/orders/0/order_date" for p, _ in paths)
    assert any(p == "/context/orders/0/total_price" for p, _ in paths)
    assert len(error["details"]["errors"]) == 3


def test_missing_required_field_points_at_the_field(client, auth):
    error = assert_envelope(client.post(ANALYZE, json={}, headers=auth), 422, "VALIDATION_ERROR")
    assert error["details"]["errors"] == [
        {"path": "/customer_id", "message": "'customer_id' is a required property"}
    ]


@pytest.mark.parametrize(
    "body",
    [
        [],
        "x",
        3,
        None,
        {"customer_id": ""},
        {"customer_id": "a" * 257},
        {
            "customer_id": "c",
            "context": {"interactions": [{"type": "t", "timestamp": "2024-01-15T10:30:00"}]},
        },
    ],
)
def test_wrong_shapes_are_422(client, auth, body):
    response = client.post(
        ANALYZE, data=json.dumps(body), headers=auth, content_type="application/json"
    )
    assert_envelope(response, 422, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"",
        b"   ",
        b'{"customer_id": NaN}',
        b'{"customer_id": Infinity}',
        b"\xff\xfe",
        b"[" * 100000,
        b'{"a": ' + b"9" * 5000 + b"}",
    ],
)
def test_malformed_json_is_400(client, auth, raw):
    response = client.post(ANALYZE, data=raw, headers=auth, content_type="application/json")
    assert_envelope(response, 400, "MALFORMED_JSON")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_415(client, auth, content_type):
    headers = dict(auth)
    if content_type:
        headers["Content-Type"] = content_type
    response = client.post(ANALYZE, data='{"customer_id": "c"}', headers=headers)
    error = assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert error["details"]["content_type"] == content_type


def test_json_with_charset_is_accepted(client, auth):
    response = client.post(
        ANALYZE,
        data='{"customer_id": "c"}',
        headers={**auth, "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/", "/api", "/api/intelligence", "/api/nope", "/docs/x"])
def test_unknown_path_is_404_endpoint_not_found(client, auth, path):
    assert_envelope(client.get(path, headers=auth), 404, "ENDPOINT_NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", ANALYZE, "POST"),
        ("DELETE", "/api/data/ingest_orders", "POST"),
        ("POST", "/api/insights/my-position", "GET"),
        ("PUT", "/api/insights/benchmarks/retail", "GET"),
    ],
)
def test_wrong_method_is_405_with_allow(client, auth, method, path, allow):
    response = client.open(path, method=method, headers=auth)
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["Allow"] == allow


def test_unknown_industry_is_404(client, auth):
    error = assert_envelope(
        client.get("/api/insights/benchmarks/underwater_basketry", headers=auth),
        404,
        "INDUSTRY_NOT_FOUND",
    )
    assert error["details"]["industry"] == "underwater_basketry"
    assert "retail" in error["details"]["supported"]


def test_unexpected_exception_is_500_in_the_envelope_and_logged(app, auth, caplog):
    def explode(*args, **kwargs):
        raise ZeroDivisionError("boom")

    app.extensions["quimbi"].platform.analyze = explode
    response = app.test_client().post(ANALYZE, json={"customer_id": "c"}, headers=auth)
    error = assert_envelope(response, 500, "INTERNAL_ERROR")
    assert "boom" not in json.dumps(error) and "Traceback" not in response.get_data(as_text=True)
    assert any("ZeroDivisionError" in (r.exc_text or "") for r in caplog.records)


def test_every_error_class_renders_a_documented_status(contract):
    documented = {
        int(s)
        for op in contract.document["paths"].values()
        for spec_op in op.values()
        for s in spec_op["responses"]
    }
    sandbox_level = {404, 405}  # path-level, described in info.description
    for cls in [ApiError, *ApiError.__subclasses__()]:
        assert cls.status in documented | sandbox_level, cls


def test_body_over_the_limit_is_413_through_a_real_server(server):
    big = json.dumps({"customer_id": "c", "pad": "x" * (1024 * 1024)})
    response = requests.post(
        server.url + ANALYZE,
        data=big,
        timeout=10,
        headers={"Content-Type": "application/json", "X-API-Key": "qpk_test_sandbox"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_body_limit_is_configurable(auth):
    client = create_app(max_body_bytes=100).test_client()
    response = client.post(ANALYZE, json={"customer_id": "c" * 120}, headers=auth)
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")


def test_real_server_errors_are_never_html(server):
    for response in [
        requests.get(server.url + "/nope", timeout=5),
        requests.get(server.url + ANALYZE, timeout=5),
        requests.post(
            server.url + ANALYZE,
            data="{",
            timeout=5,
            headers={"Content-Type": "application/json", "X-API-Key": "qpk_test_sandbox"},
        ),
    ]:
        assert response.headers["Content-Type"] == "application/json"
        assert "error" in response.json()
