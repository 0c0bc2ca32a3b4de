"""`quimbi-sandbox healthcheck`: asks a running sandbox's /_sandbox/health if it is up.

Owns turning the serve settings into the URL to probe, and judging the answer. Used by
the Docker image's HEALTHCHECK, so it reads the very Settings `serve` reads and follows
a changed host or port. Standard library only (no Flask, no requests): it runs in the
image's slim Python, often every few seconds.
"""

from __future__ import annotations

import ipaddress
import json

from sandbox.config import Settings

HEALTH_PATH = "/_sandbox/health"
TIMEOUT_SECONDS = 5.0

# A server bound to a wildcard address is reached on the loopback of the same family.
_WILDCARD_TO_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def health_url(settings: Settings) -> str:
    """The URL where a sandbox started with ``settings`` answers its health check."""
    return base_url(settings) + HEALTH_PATH


def base_url(settings: Settings) -> str:
    """Where a sandbox started with ``settings`` is reached from this machine."""
    host = _WILDCARD_TO_LOOPBACK.get(settings.host, settings.host)
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a host name, used as it is
    return f"http://{host}:{settings.port}"


def probe(url: str, timeout: float = TIMEOUT_SECONDS) -> tuple[bool, str]:
    """``(healthy, what was seen)``: healthy means 200 with ``{"status": "ok"}``."""
    # Imported here: `serve` imports this module for base_url, and urllib.request (with
    # http.client and email) is a start-up cost only the probe needs.
    import urllib.error
    import urllib.request

    # Never through an HTTP proxy from the environment: the server is on this machine.
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with direct.open(url, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:  # e.g. 503 {"status": "degraded", ...}
        with exc:
            said = exc.read(200)
        return False, f"{url} answered {exc.code}: {said!r}"
    except (OSError, ValueError) as exc:  # refused, timed out, unresolvable
        return False, f"{url} unreachable: {exc}"
    try:
        body = json.loads(raw)
    except ValueError:
        return False, f"{url} answered {status} with a body that is not JSON"
    if status == 200 and isinstance(body, dict) and body.get("status") == "ok":
        return True, f"{url} ok (version {body.get('version', '?')})"
    return False, f"{url} answered {status}: {raw[:200]!r}"
