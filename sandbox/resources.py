"""Where the contract and fixtures are, installed or in a source checkout.

A wheel carries them under ``sandbox/_bundled``; a checkout (or an editable install)
reads them from the repository root, where people edit them. They are read with
libyaml's parser when PyYAML has it (its wheels do): the pure-Python one spent ~110 ms
of every start-up on them (tests/test_resources.py: both parse them alike).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# Safe either way: both construct only plain YAML types.
_SHIPPED_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_path(name: str) -> Path:
    bundled = _PACKAGE_DIR / "_bundled" / name
    if bundled.exists():
        return bundled
    return _PACKAGE_DIR.parent / name


def contract_path() -> Path:
    return resource_path("openapi.yaml")


def fixtures_dir() -> Path:
    return resource_path("fixtures")


def load_yaml(text: str) -> Any:
    """A shipped YAML file's document (openapi.yaml, fixtures/*.yaml). Files a user
    passes (--keys, --faults) keep ``yaml.safe_load``, whose errors they were told."""
    return yaml.load(text, Loader=_SHIPPED_LOADER)
