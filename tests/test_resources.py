"""The shipped YAML files read by libyaml, and what start-up leaves unimported."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox import resources
from sandbox.resources import contract_path, fixtures_dir, load_yaml
from sandbox.spec import load_contract

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = [contract_path(), *sorted(fixtures_dir().glob("*.yaml"))]


def typed(node: Any) -> Any:
    """``node`` with every scalar's type spelled out: 1, 1.0 and True are all equal."""
    if isinstance(node, dict):
        return {typed(key): typed(value) for key, value in node.items()}
    if isinstance(node, list):
        return [typed(item) for item in node]
    return (type(node).__name__, node)


def test_pyyaml_has_libyaml_and_shipped_files_use_it() -> None:
    # Without libyaml start-up is ~110 ms slower; PyYAML's wheels always bring it.
    assert yaml.__with_libyaml__, "PyYAML was built without libyaml"
    assert resources._SHIPPED_LOADER is yaml.CSafeLoader


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.name)
def test_libyaml_reads_each_shipped_file_as_the_python_parser_does(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    by_python = yaml.load(text, Loader=yaml.SafeLoader)
    by_libyaml = load_yaml(text)
    assert by_python, f"{path.name} is empty"
    assert typed(by_libyaml) == typed(by_python)
    # Key order too: it is the order /openapi.json and the docs show things in.
    assert json.dumps(by_libyaml, default=str) == json.dumps(by_python, default=str)


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
