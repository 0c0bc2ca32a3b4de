"""sandbox.proxy.path: the proxy's request (Served) reads as werkzeug's Request would; the
keys it knows (for the journal's tenant) are the ring's, remembered within a bound; the
upstream's headers (RelayedHeaders) are set as werkzeug's Headers would set them."""

from __future__ import annotations

import pytest
from werkzeug import Request
from werkzeug.datastructures import Headers

from sandbox.netfaults import BODY_KEY
from sandbox.proxy.path import Served


@pytest.mark.parametrize(
    "path_info",
    [
        "/api/intelligence/analyze",
        "//api//x",
        "",
        "/api/customers/" + "café".encode().decode("latin-1"),  # UTF-8 bytes, PEP 3333
        "/api/customers/\xff\xfe",  # bytes that are not UTF-8
    ],
)
@pytest.mark.parametrize("method", ["POST", "get"])
def test_method_and_path_read_as_werkzeug_reads_them(path_info, method):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path_info, BODY_KEY: b"{}"}
    served, werkzeug = Served(environ, 1000), Request(environ)
    assert (served.method, served.path) == (werkzeug.method, werkzeug.path)
    assert served.environ is environ and served.max_content_length == 1000
    assert served.get_data() == b"{}"


def test_keys_are_known_as_the_ring_knows_them_and_remembered_within_a_bound(monkeypatch):
    from sandbox.app import create_app
    from sandbox.config import Settings
    from sandbox.proxy import path as path_module

    app = create_app(Settings(upstream="http://127.0.0.1:9"))
    proxy = app.sandbox_ahead.__self__
    assert isinstance(proxy, path_module.ProxyPath)
    ring = proxy.sandbox.keyring
    asked: list[str] = []
    authenticate = ring.authenticate

    def counted(presented):
        asked.append(presented)
        return authenticate(presented)

    monkeypatch.setattr(ring, "authenticate", counted)
    monkeypatch.setattr(path_module, "_KNOWN_KEYS", 3)
    assert proxy._known("qpk_test_sandbox").tenant == authenticate("qpk_test_sandbox").tenant
    assert proxy._known("qpk_test_sandbox") is proxy._known("qpk_test_sandbox")
    assert proxy._known("not-a-key") is None and proxy._known("not-a-key") is None
    assert proxy._known(None) is None and proxy._known("") is None
    assert asked == ["qpk_test_sandbox", "not-a-key"]  # each asked of the ring once
    for other in ("a", "b", "c"):
        proxy._known(other)
    assert len(proxy.known_keys) <= 3  # bounded: forgotten all at once when full


def test_relayed_headers_keep_the_upstream_s_order_and_set_any_case_once():
    from sandbox.proxy.path import RelayedHeaders

    sent = [
        ("x-sandbox-source", "x"),
        ("Content-Type", "application/json"),
        ("X-Sandbox-Source", "y"),
    ]
    headers, werkzeug = RelayedHeaders(list(sent)), Headers(sent)
    assert headers.get("content-type") == "application/json" and headers.get("Nope") is None
    for each in (headers, werkzeug):
        each["X-Sandbox-Source"] = "upstream"  # the upstream's own, any case, replaced
        each.extend([("X-RateLimit-Limit", "100")])
        each["x-ratelimit-limit"] = "99"  # one added after the first set is known too
        each["X-Sandbox-Violations"] = "0"
    assert (
        headers.to_wsgi_list()
        == werkzeug.to_wsgi_list()
        == [
            ("X-Sandbox-Source", "upstream"),
            ("Content-Type", "application/json"),
            ("x-ratelimit-limit", "99"),
            ("X-Sandbox-Violations", "0"),
        ]
    )
