"""Start-up: what it leaves for first use, and the collector it hands the server."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sandbox import cli, server
from sandbox.spec import load_contract

ROOT = Path(__file__).resolve().parents[1]


def test_python_validators_are_made_once_under_threads() -> None:
    operation = load_contract().operation("analyzeCustomer")
    made: list[object] = []
    start = threading.Barrier(8)

    def ask() -> None:
        start.wait()
        made.append(operation.strict_request_validator)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 8 and all(found is made[0] for found in made)
    assert operation.request_validator is not made[0]  # the lenient one is another


_FIRST_ANSWER = """
import json, sys
from werkzeug.test import Client
from sandbox.app import create_app

client = Client(create_app())
answer = client.post(
    "/api/intelligence/analyze",
    json={"customer_id": "test_customer_high_ltv", "context": {}},
    headers={"X-API-Key": "qpk_test_sandbox"},
)
assert answer.status_code == 200, answer.get_data()
print(json.dumps(sorted(name for name in sys.argv[1:] if name in sys.modules)))
"""


def test_start_up_and_a_magic_customers_analyze_leave_the_heavy_imports_out() -> None:
    """Faker (the catalogue, only for order lines) and jsonschema (only to explain a
    rejected body) are imported on first use; a new import of either at start-up would
    cost tens of milliseconds of every start (bench/startup.py measures it)."""
    heavy = ["faker", "jsonschema", "referencing"]
    result = subprocess.run(
        [sys.executable, "-c", _FIRST_ANSWER, *heavy],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_serve_builds_with_the_collector_off_and_hands_it_on_frozen(monkeypatch) -> None:
    seen = {}

    def fake_serve(app, settings) -> None:
        seen["enabled"] = gc.isenabled()
        seen["frozen"] = gc.get_freeze_count()
        seen["app"] = app

    def fake_create_app(settings):
        seen["enabled_while_building"] = gc.isenabled()
        return object()

    monkeypatch.setattr(server, "serve", fake_serve)
    monkeypatch.setattr("sandbox.app.create_app", fake_create_app)
    assert gc.isenabled()
    try:
        assert cli.main(["serve", "--port", "0"]) == 0
    finally:
        gc.unfreeze()  # pytest's own objects were frozen with the "app"
    assert seen["enabled_while_building"] is False
    assert seen["enabled"] is True
    assert seen["frozen"] > 0
    assert gc.isenabled()


def test_a_refused_start_leaves_the_collector_on(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        assert cli.main(["serve", "--rate-limit", "lots"]) == 2
    finally:
        gc.unfreeze()
    assert "rate" in capsys.readouterr().err
    assert gc.isenabled()
