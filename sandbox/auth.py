"""API keys: which tenant a key belongs to, what it may do, and whether it still works.

Pure Python (no Flask). Keys are looked up by their SHA-256 digest and confirmed with a
constant-time compare, so neither the lookup nor the compare leaks how much of a
presented key was right. Whole keys are never logged: use :func:`redact`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sandbox.errors import InsufficientPermissions, InvalidApiKey
from sandbox.resources import load_yaml

PERMISSIONS = ("read", "write")
STATUSES = ("active", "expired", "revoked")


class KeyFileError(ValueError):
    """A keys file is unreadable or malformed; the message names the file and entry."""


@dataclass(frozen=True)
class ApiKey:
    key: str
    tenant: str
    permissions: frozenset[str]
    status: str = "active"
    description: str = ""
    rate_limited: bool = False  # magic: every call is over the rate limit (429)


@dataclass(frozen=True)
class Tenant:
    name: str
    industry: str = "retail"


def redact(key: str | None) -> str | None:
    """Enough of a key to recognise it in a log, never enough to use it."""
    if key is None:
        return None
    return key[:8] + "…" if len(key) > 8 else "…"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class KeyRing:
    def __init__(self, keys: Iterable[ApiKey], tenants: Iterable[Tenant] = ()) -> None:
        self._by_digest = {_digest(k.key): k for k in keys}
        self._digests = {k.key: digest for digest, k in self._by_digest.items()}
        self.tenants: dict[str, Tenant] = {t.name: t for t in tenants}
        for api_key in self._by_digest.values():
            self.tenants.setdefault(api_key.tenant, Tenant(api_key.tenant))

    def __iter__(self):
        return iter(sorted(self._by_digest.values(), key=lambda k: k.key))

    def authenticate(self, presented: str | None) -> ApiKey:
        if not presented:
            raise InvalidApiKey("Missing API key. Send it in the X-API-Key header.")
        digest = _digest(presented)
        found = self._by_digest.get(digest)
        # The stored key's digest was made once, with the ring: only the presented one is
        # hashed per request.
        if found is None or not hmac.compare_digest(self._digests[found.key], digest):
            raise InvalidApiKey("Invalid API key.")
        if found.status == "expired":
            raise InvalidApiKey("API key has expired. Ask your Quimbi administrator for a new one.")
        if found.status == "revoked":
            raise InvalidApiKey("API key has been revoked.")
        return found

    @staticmethod
    def require(api_key: ApiKey, permission: str) -> None:
        if permission not in api_key.permissions:
            raise InsufficientPermissions(
                f"API key lacks the '{permission}' permission this endpoint requires.",
                details={"required_permission": permission},
            )


def _parse_keys(document: Any, source: str) -> tuple[list[ApiKey], list[Tenant]]:
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), Mapping):
        raise KeyFileError(f"{source}: expected a mapping with a 'keys' mapping")
    keys = []
    for key, entry in document["keys"].items():
        where = f"{source}: key {redact(str(key))}"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("tenant"), str):
            raise KeyFileError(f"{where}: needs a 'tenant' string")
        permissions = entry.get("permissions", ["read", "write"])
        if not isinstance(permissions, list) or not set(permissions) <= set(PERMISSIONS):
            raise KeyFileError(f"{where}: permissions must be a list of {PERMISSIONS}")
        status = entry.get("status", "active")
        if status not in STATUSES:
            raise KeyFileError(f"{where}: status must be one of {STATUSES}")
        rate_limited = entry.get("rate_limited", False)
        if not isinstance(rate_limited, bool):
            raise KeyFileError(f"{where}: rate_limited must be true or false")
        keys.append(
            ApiKey(
                str(key),
                entry["tenant"],
                frozenset(permissions),
                status,
                str(entry.get("description", "")),
                rate_limited,
            )
        )
    tenants = []
    for name, entry in (document.get("tenants") or {}).items():
        industry = entry.get("industry", "retail") if isinstance(entry, Mapping) else "retail"
        tenants.append(Tenant(str(name), str(industry)))
    return keys, tenants


def load_keyring(default_file: Path, extra_file: Path | None = None) -> KeyRing:
    """The shipped keys, with ``extra_file``'s entries added or replacing them by key."""
    keys: dict[str, ApiKey] = {}
    tenants: dict[str, Tenant] = {}
    for path in [default_file, extra_file]:
        if path is None:
            continue
        # The shipped file by libyaml; the user's as it always was (its errors alike).
        read = load_yaml if path is default_file else yaml.safe_load
        try:
            document = read(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise KeyFileError(f"{path}: cannot read keys file: {exc}") from None
        file_keys, file_tenants = _parse_keys(document, str(path))
        keys.update({k.key: k for k in file_keys})
        tenants.update({t.name: t for t in file_tenants})
    return KeyRing(keys.values(), tenants.values())
