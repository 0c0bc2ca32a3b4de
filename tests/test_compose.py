"""docker-compose.yml: two replicas of the Dockerfile's image, Redis, one proxy port.

These checks need no Docker engine (tests/test_compose_engine.py brings it up on one):
that it builds this repository's Dockerfile, that every QUIMBI_SANDBOX_* variable it sets is a
real setting, that the proxy reaches the replicas on the image's port, and that the
commented app slot is valid once uncommented.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from sandbox.config import ENV_PREFIX, Settings
from tests.conftest import ROOT
from tests.dockerfile import parse_dockerfile

COMPOSE = ROOT / "docker-compose.yml"
PUBLISH_VARIABLE = "QUIMBI_COMPOSE_PUBLISH"


def published_port(compose: dict[str, Any]) -> tuple[str, str]:
    """The proxy's one ``host:container`` port pair, ``${VAR:-default}`` at its default."""
    (published,) = compose["services"]["proxy"]["ports"]
    match = re.fullmatch(r"\$\{(\w+):-([\w.:]+)\}:(\d+)", published)
    assert match, f"{published!r}: expected ${{{PUBLISH_VARIABLE}:-8080}}:<port>"
    assert match.group(1) == PUBLISH_VARIABLE
    return match.group(2), match.group(3)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def sandbox_settings_set(compose: dict[str, Any]) -> dict[str, str]:
    return {
        name.removeprefix(ENV_PREFIX).lower(): str(value)
        for service in compose["services"].values()
        for name, value in (service.get("environment") or {}).items()
        if name.startswith(ENV_PREFIX)
    }


def test_two_replicas_of_this_repositorys_image(compose):
    sandbox = compose["services"]["sandbox"]
    assert sandbox["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    assert (ROOT / sandbox["build"]["context"] / sandbox["build"]["dockerfile"]).is_file()
    assert sandbox["deploy"]["replicas"] == 2
    # the image's own HEALTHCHECK gates the proxy
    assert compose["services"]["proxy"]["depends_on"]["sandbox"]["condition"] == ("service_healthy")


def test_every_sandbox_variable_is_a_real_setting(compose):
    fields = {option.name: option for option in Settings.option_fields()}
    for name, value in sandbox_settings_set(compose).items():
        assert name in fields, f"{ENV_PREFIX}{name.upper()} is not a sandbox setting"
        fields[name].metadata["parse"](value)  # and its value is one the setting accepts


def test_replicas_share_the_redis_service(compose):
    store = sandbox_settings_set(compose)["store"]
    match = re.fullmatch(r"redis://([\w-]+):(\d+)/\d+", store)
    assert match, store
    assert match.group(1) in compose["services"]
    assert compose["services"][match.group(1)]["image"].startswith("redis:")
    assert match.group(2) == "6379"


def nginx_directive(name: str) -> list[str]:
    text = (ROOT / "docker" / "nginx.conf").read_text()
    return re.findall(rf"^\s*{name}\s+([^;{{]+);", text, re.M)


def test_proxy_publishes_one_port_and_reaches_the_replicas(compose):
    proxy = compose["services"]["proxy"]
    (config,) = [v for v in proxy["volumes"] if v.endswith("/etc/nginx/conf.d/default.conf:ro")]
    assert (ROOT / config.split(":")[0]).resolve() == ROOT / "docker" / "nginx.conf"
    _host_port, container_port = published_port(compose)
    assert nginx_directive("listen") == [container_port]
    exposed = parse_dockerfile(ROOT / "Dockerfile")[-1].last("EXPOSE")
    assert nginx_directive("server") == [f"sandbox:{exposed}"]
    assert "sandbox" in compose["services"]
    # no other service publishes a port: the proxy is the one way in
    others = [name for name, s in compose["services"].items() if name != "proxy" and "ports" in s]
    assert not others


def test_the_commented_app_slot_is_valid_once_uncommented(compose):
    lines = COMPOSE.read_text().splitlines()
    start = lines.index("  # app:")
    block = [line.replace("# ", "", 1) for line in lines[start:] if line.startswith("  #")]
    app = yaml.safe_load("\n".join(block))["app"]
    base_url = app["environment"]["QUIMBI_BASE_URL"]
    _host_port, proxy_port = published_port(compose)
    assert base_url == f"http://proxy:{proxy_port}"
    keys = yaml.safe_load((ROOT / "fixtures" / "keys.yaml").read_text())["keys"]
    assert keys[app["environment"]["QUIMBI_API_KEY"]]["status"] == "active"
    assert set(app["depends_on"]) <= set(compose["services"])


def test_users_get_port_8080_and_docker_compose_1_29_accepts_the_file(compose):
    # `docker compose up --build` with nothing set publishes the proxy on 8080
    assert published_port(compose) == ("8080", "8080")
    # docker-compose 1.29 (Debian's) rejects a top-level `name:`
    assert set(compose) <= {"services", "networks", "volumes", "configs", "secrets"}
