"""The Docker image on a real engine: built from the Dockerfile, run, probed, stopped.

Marked ``docker`` (``-m docker`` selects, ``-m "not docker"`` leaves out). The container
shares the host's network and binds 127.0.0.1 on a free port. What the image adds to its
base and how long it takes to turn healthy go to artifacts/docker-image.json (README
"Locally, with Docker or compose" quotes them).
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from tests.conftest import DEFAULT_KEY, ROOT, free_port
from tests.dockerengine import (
    docker,
    image_megabytes,
    inspect,
    is_standin,
    require_engine,
    wait_healthy,
)
from tests.dockerfile import parse_dockerfile

pytestmark = pytest.mark.docker

IMAGE = "quimbi-sandbox:test"
GRACE_SECONDS = 10


@pytest.fixture(scope="module")
def image() -> str:
    require_engine()
    docker("build", "-q", "-t", IMAGE, str(ROOT), timeout=1200)
    return IMAGE


def test_image_turns_healthy_answers_as_non_root_and_stops_with_0(image):
    name = f"quimbi-sandbox-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    try:
        docker(
            "run",
            "--detach",
            "--name",
            name,
            "--network",
            "host",
            "--env",
            "QUIMBI_SANDBOX_HOST=127.0.0.1",
            "--env",
            f"QUIMBI_SANDBOX_PORT={port}",
            image,
        )
        seconds_to_healthy = wait_healthy(name)

        analysis = requests.post(
            f"http://127.0.0.1:{port}/api/intelligence/analyze",
            json={"customer_id": "test_customer_high_ltv"},
            headers={"X-API-Key": DEFAULT_KEY},
            timeout=10,
        )
        assert analysis.status_code == 200, analysis.text
        assert analysis.json()["customer_id"] == "test_customer_high_ltv"

        # the server itself (PID 1), not only a shell exec'd beside it, is unprivileged
        status = docker("exec", name, "cat", "/proc/1/status")
        uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
        assert "0" not in uids, status
        assert docker("exec", name, "id", "-u") != "0"

        docker("stop", "--time", str(GRACE_SECONDS), name, timeout=GRACE_SECONDS + 30)
        state = inspect(name)["State"]
        # past the grace period the engine SIGKILLs: exit code 137, not 0
        assert (state["Status"], state["ExitCode"], state["OOMKilled"]) == ("exited", 0, False)
    finally:
        docker("rm", "--force", name, check=False)

    base = parse_dockerfile(ROOT / "Dockerfile")[-1].base
    report = {
        "base": base,
        "base_is_standin": is_standin(base),
        "mb_added_to_base": round(image_megabytes(image) - image_megabytes(base), 1),
        "seconds_to_healthy": round(seconds_to_healthy, 1),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (ROOT / "artifacts").mkdir(exist_ok=True)
    (ROOT / "artifacts" / "docker-image.json").write_text(json.dumps(report, indent=2) + "\n")
