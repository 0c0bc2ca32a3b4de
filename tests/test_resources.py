"""The shipped YAML files: read by libyaml, exactly as the pure-Python parser reads them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox import resources
from sandbox.resources import contract_path, fixtures_dir, load_yaml

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
