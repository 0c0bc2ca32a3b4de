"""Where the contract and fixtures are, installed or in a source checkout.

A wheel carries them under ``sandbox/_bundled``; a checkout (or an editable install)
reads them from the repository root, where people edit them.
"""

from __future__ import annotations

from pathlib import Path

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
