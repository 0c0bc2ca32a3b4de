"""The wheel carries the contract and fixtures, and serves from anywhere once installed."""

from __future__ import annotations

import subprocess
import zipfile

import pytest

from tests.conftest import ROOT, ServerProcess


def test_wheel_bundles_contract_and_fixtures(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "sandbox/_bundled/openapi.yaml" in names
    for fixture in ("keys.yaml", "customers.yaml", "benchmarks.yaml"):
        assert f"sandbox/_bundled/fixtures/{fixture}" in names
    assert "contract_tests/__init__.py" in names
    bundled = zipfile.ZipFile(wheel).read("sandbox/_bundled/openapi.yaml")
    assert bundled == (ROOT / "openapi.yaml").read_bytes()


def test_wheel_ships_the_docs_page_and_its_assets(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    docs = ROOT / "sandbox" / "docs"
    shipped = [
        path.relative_to(ROOT).as_posix()
        for folder in (docs / "static", docs / "templates")
        for path in folder.rglob("*")
        if path.is_file()
    ]
    for needed in (
        "sandbox/docs/templates/docs.html",
        "sandbox/docs/static/docs.js",
        "sandbox/docs/static/swagger-ui/swagger-ui-bundle.js",
        "sandbox/docs/static/swagger-ui/swagger-ui.css",
        "sandbox/docs/static/swagger-ui/LICENSE",
    ):
        assert needed in shipped
    assert set(shipped) <= names, sorted(set(shipped) - names)


@pytest.mark.slow
def test_installed_wheel_serves_from_another_directory(installed_wheel, tmp_path):
    python = installed_wheel / "python"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    command = [str(installed_wheel / "quimbi-sandbox"), "serve"]
    with ServerProcess(command=command, cwd=elsewhere, env={"PYTHONPATH": ""}) as server:
        response = server.post("/api/intelligence/analyze", {"customer_id": "test_customer_new"})
        assert response.status_code == 200, response.text
        assert response.json()["behavioral_metrics"]["total_orders"] == 0
    located = subprocess.run(
        [str(python), "-c", "from sandbox.resources import contract_path; print(contract_path())"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "site-packages/sandbox/_bundled/openapi.yaml" in located
