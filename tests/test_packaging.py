"""The wheel carries the contract and fixtures, and serves from anywhere once installed."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, ServerProcess


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("quimbi_sandbox-*.whl")
    return built


def test_wheel_bundles_contract_and_fixtures(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "sandbox/_bundled/openapi.yaml" in names
    for fixture in ("keys.yaml", "customers.yaml", "benchmarks.yaml"):
        assert f"sandbox/_bundled/fixtures/{fixture}" in names
    assert "contract_tests/__init__.py" in names
    bundled = zipfile.ZipFile(wheel).read("sandbox/_bundled/openapi.yaml")
    assert bundled == (ROOT / "openapi.yaml").read_bytes()


@pytest.mark.slow
def test_installed_wheel_serves_from_another_directory(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    command = [str(env_dir / "bin" / "quimbi-sandbox"), "serve"]
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
