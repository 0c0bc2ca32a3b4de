"""docker-compose.yml brought up for real, unchanged: two replicas, Redis, nginx.

Marked ``docker``. Once with Compose v2 (`docker compose`, what users have) and once with
Debian's docker-compose 1.29 and `--compatibility` (which turns deploy.replicas into
containers); scripts/docker-engine.sh installs both. Each run gets its own project name,
publishes the proxy on a free loopback port (QUIMBI_COMPOSE_PUBLISH) and is always taken
down.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid

import pytest
import requests

from tests.conftest import DEFAULT_KEY, ROOT, free_port
from tests.dockerengine import ENGINE_MISSING, docker, inspect, require_engine, wait_healthy

pytestmark = pytest.mark.docker


COMPOSES = {
    "v2": (["docker", "compose"], "2."),
    "1.29": (["docker-compose", "--compatibility"], "1.29."),
}


def compose_command(version: str) -> list[str]:
    """The compose CLI of ``version``; fails saying so when it is not installed."""
    command, expected = COMPOSES[version]
    if shutil.which(command[0]):
        answer = subprocess.run(
            [*command, "version", "--short"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if answer.returncode == 0 and answer.stdout.strip().lstrip("v").startswith(expected):
            return command
    pytest.fail(f"`{' '.join(command)}` {expected}x is not installed; {ENGINE_MISSING}")


def project_containers(project: str, service: str | None = None) -> list[str]:
    filters = ["--filter", f"label=com.docker.compose.project={project}"]
    if service:
        filters += ["--filter", f"label=com.docker.compose.service={service}"]
    return docker("ps", "--all", "--quiet", *filters).split()


def wait_for_replicas(project: str, count: int, timeout: float = 120) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replicas = project_containers(project, "sandbox")
        if len(replicas) >= count:
            for replica in replicas:
                wait_healthy(replica, timeout=max(deadline - time.monotonic(), 1))
            return replicas
        time.sleep(0.5)
    raise AssertionError(f"{project}: {count} sandbox replicas never appeared")


def order(customer: str) -> dict:
    return {
        "customer_id": customer,
        "order_id": f"{customer}-o1",
        "order_date": "2024-01-10T09:00:00Z",
        "total_price": 4321.5,
    }


@pytest.mark.parametrize("version", list(COMPOSES))
def test_compose_up_two_healthy_replicas_share_ingested_data_then_down_leaves_nothing(version):
    require_engine()
    project = f"quimbi-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    compose = [
        *compose_command(version),
        "--project-name",
        project,
        "--file",
        str(ROOT / "docker-compose.yml"),
    ]
    env = {**os.environ, "QUIMBI_COMPOSE_PUBLISH": f"127.0.0.1:{port}"}

    def run(*args: str, timeout: float = 300) -> None:
        done = subprocess.run(
            [*compose, *args], env=env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"{args} -> {done.returncode}\n{done.stdout}\n{done.stderr}"

    try:
        run("up", "--detach", "--build", timeout=1200)
        replicas = wait_for_replicas(project, 2)
        addresses = {
            network["IPAddress"]: replica
            for replica in replicas
            for network in inspect(replica)["NetworkSettings"]["Networks"].values()
        }
        assert len(replicas) == 2 and len(addresses) == 2, addresses

        base = f"http://127.0.0.1:{port}"
        headers = {"X-API-Key": DEFAULT_KEY}
        customer = f"compose-{uuid.uuid4().hex[:8]}"
        for _ in range(100):  # the proxy starts once the replicas are healthy
            try:
                if requests.get(f"{base}/_sandbox/health", timeout=5).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)

        def analyze() -> requests.Response:
            answer = requests.post(
                f"{base}/api/intelligence/analyze",
                json={"customer_id": customer},
                headers=headers,
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            return answer

        before = analyze().json()["behavioral_metrics"]
        ingested = requests.post(
            f"{base}/api/data/ingest_orders",
            json={"source": "compose-test", "orders": [order(customer)]},
            headers=headers,
            timeout=10,
        )
        assert ingested.status_code == 200 and ingested.json()["ingested_count"] == 1, ingested.text

        seen: dict[str, dict] = {}
        for _ in range(40):  # until each replica has answered
            answer = analyze()
            replica_ip = answer.headers["X-Sandbox-Replica"].rsplit(":", 1)[0]
            seen[replica_ip] = answer.json()["behavioral_metrics"]
            if len(seen) == len(addresses):
                break
        assert set(seen) == set(addresses), f"answered by {set(seen)}, replicas {addresses}"
        for metrics in seen.values():  # each replica sees the order, whichever took it in
            assert metrics["total_orders"] == before["total_orders"] + 1, (before, metrics)
            gained = metrics["lifetime_value"] - before["lifetime_value"]
            assert round(gained, 2) == 4321.5, (before, metrics)

        run("down", "--volumes", "--remove-orphans")
        assert project_containers(project) == []
        networks = docker(
            "network", "ls", "-q", "--filter", f"label=com.docker.compose.project={project}"
        )
        assert networks == ""
    finally:
        subprocess.run(
            [*compose, "down", "--volumes", "--remove-orphans"],
            env=env,
            capture_output=True,
            timeout=300,
            check=False,
        )
