"""/docs, /openapi.yaml and /openapi.json: the contract for people and tools, no key."""

from __future__ import annotations

import hashlib
import re

import yaml

from sandbox.docs import DEFAULT_KEY, api_key_scheme
from tests.conftest import ROOT

VENDORED = ROOT / "sandbox" / "docs" / "static" / "swagger-ui"


def test_openapi_yaml_is_the_contract_byte_for_byte(client):
    with client.get("/openapi.yaml") as response:
        assert response.status_code == 200
        assert response.mimetype == "application/yaml"
        assert response.data == (ROOT / "openapi.yaml").read_bytes()


def test_openapi_json_is_the_contract_pointing_at_the_serving_sandbox(client, contract):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    served = response.get_json()
    assert served["servers"] == [
        {"url": "/", "description": "This sandbox (the server that served this page)"}
    ]
    served.pop("servers")
    original = dict(contract.document)
    original.pop("servers")
    assert served == original


def test_docs_page_loads_only_local_assets_and_prefills_the_default_key(client, contract):
    response = client.get("/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'data-api-key="{DEFAULT_KEY}"' in html
    assert f'data-security-scheme="{api_key_scheme(contract.document)}"' in html
    assert 'data-spec-url="/openapi.json"' in html
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls, html
    for url in urls:
        assert url.startswith("/docs/static/"), f"{url} is not served by the sandbox"
        with client.get(url) as asset:
            assert asset.status_code == 200, url
    assert client.get("/docs/").status_code == 200


def test_default_key_exists_in_the_shipped_keys():
    keys = yaml.safe_load((ROOT / "fixtures" / "keys.yaml").read_text())["keys"]
    assert keys[DEFAULT_KEY]["status"] == "active"


def test_docs_routes_need_no_key_and_errors_keep_the_envelope(client):
    for path in ("/docs", "/openapi.yaml", "/openapi.json"):
        with client.get(path) as response:  # no X-API-Key sent
            assert response.status_code == 200, path
    missing = client.get("/docs/static/nothing-here.js")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "ENDPOINT_NOT_FOUND"
    wrong_method = client.post("/openapi.json")
    assert wrong_method.status_code == 405
    assert wrong_method.get_json()["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_vendored_assets_match_the_checksums_their_readme_records():
    readme = (VENDORED / "README.md").read_text()
    recorded = dict(
        (name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M)
    )
    assert set(recorded) == {"swagger-ui-bundle.js", "swagger-ui.css"}
    for name, digest in recorded.items():
        assert hashlib.sha256((VENDORED / name).read_bytes()).hexdigest() == digest, name
    version = re.search(r"`swagger-ui-dist` \*\*([\d.]+)\*\*", readme).group(1)
    assert f'PACKAGE_VERSION:"{version}"' in (VENDORED / "swagger-ui-bundle.js").read_text()
