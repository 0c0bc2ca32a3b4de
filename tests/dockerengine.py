"""Talking to a Docker engine from the tests marked ``docker``.

The engine tests never skip: with no engine answering they fail and say what is
missing (scripts/test.sh installs docker.io and starts dockerd; scripts/docker-engine.sh).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from typing import Any

import pytest

ENGINE_MISSING = (
    "no Docker engine answers `docker info`: install docker.io (and docker-compose) and "
    "start dockerd; `bash scripts/test.sh` does both (scripts/docker-engine.sh)"
)


def docker(*args: str, timeout: float = 120, check: bool = True, **kw) -> str:
    """``docker ARGS``'s stdout; a failure shows the command and what it said."""
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False, **kw
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} -> {result.returncode}:\n{result.stderr}")
    return result.stdout.strip()


def require_engine() -> None:
    if shutil.which("docker") is None:
        pytest.fail(f"no `docker` command; {ENGINE_MISSING}")
    try:
        answered = subprocess.run(
            ["docker", "info"], capture_output=True, text=True, timeout=30, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`docker info` did not answer in 30 s; {ENGINE_MISSING}")
    if answered.returncode != 0:
        pytest.fail(f"{ENGINE_MISSING}\n{answered.stderr.strip()}")


def inspect(name: str) -> dict[str, Any]:
    return json.loads(docker("inspect", name))[0]


def wait_healthy(container: str, timeout: float = 120) -> float:
    """Seconds until ``container``'s HEALTHCHECK says healthy; fails with its logs if not."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        state = inspect(container)["State"]
        if state["Health"]["Status"] == "healthy":
            return time.monotonic() - started
        if state["Status"] == "exited" or state["Health"]["Status"] == "unhealthy":
            break
        time.sleep(0.1)
    logs = docker("logs", "--tail", "40", container, check=False, stderr=subprocess.STDOUT)
    probes = inspect(container)["State"]["Health"].get("Log") or []
    raise AssertionError(f"{container} not healthy: {probes[-1:]}\nlogs:\n{logs}")


def image_megabytes(image: str) -> float:
    return int(docker("image", "inspect", "-f", "{{.Size}}", image)) / 1e6


def is_standin(image: str) -> bool:
    """Built by scripts/docker-engine.sh from Debian packages, the registry being out of reach."""
    labels = json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", image))
    return bool((labels or {}).get("org.quimbi.standin-for"))
