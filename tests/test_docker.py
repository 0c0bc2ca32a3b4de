"""The Docker image, without a Docker engine: its Dockerfile's own lines, run for real.

The wheel is installed by the runtime stage's `pip install` line into a fresh venv, then
the image's CMD runs with the image's ENV (only the host and port swapped for loopback
and a free port) from a directory outside the repository, and its HEALTHCHECK command
is asked about it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, ServerProcess
from tests.dockerfile import Stage, parse_dockerfile


def image_environment(stage: Stage, bin_dir: Path) -> dict[str, str]:
    """What a process in the image sees: the image's ENV, its scripts on PATH, no repo."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("QUIMBI_SANDBOX_") and name not in {"PYTHONPATH", "VIRTUAL_ENV"}
    }
    path = os.pathsep.join([str(bin_dir), inherited.get("PATH", "/usr/bin:/bin")])
    return {**inherited, **stage.env, "PATH": path}


def test_build_stage_makes_only_the_wheel():
    builder, runtime = parse_dockerfile(ROOT / "Dockerfile")
    assert builder.name == "builder"
    (build,) = builder.all("RUN")
    assert shlex.split(build)[:2] == ["pip", "wheel"] and "--no-deps" in build
    # every top-level path the builder copies is in the build context .dockerignore allows
    allowed = {
        line.removeprefix("!").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for copy in builder.all("COPY"):
        *sources, _destination = shlex.split(copy)
        assert set(sources) <= allowed, (sources, allowed)
    assert runtime.base == builder.base == "python:3.11-slim"


def test_runtime_stage_has_no_source_tree_and_no_root():
    runtime = parse_dockerfile(ROOT / "Dockerfile")[-1]
    for copy in runtime.all("COPY"):
        assert copy.startswith("--from=builder "), f"runtime copies from the context: {copy}"
    user = runtime.last("USER").split(":")[0]
    assert user not in {"0", "root"}
    names = [i.keyword for i in runtime.instructions]
    assert names.index("USER") < names.index("CMD")


def test_image_binds_all_interfaces_on_the_exposed_port():
    runtime = parse_dockerfile(ROOT / "Dockerfile")[-1]
    assert runtime.env["QUIMBI_SANDBOX_HOST"] == "0.0.0.0"
    assert runtime.last("EXPOSE") == runtime.env["QUIMBI_SANDBOX_PORT"]
    assert runtime.last("STOPSIGNAL") == "SIGTERM"
    _options, health = runtime.healthcheck
    # no port on the command line: it follows QUIMBI_SANDBOX_PORT like serve does
    assert not any(runtime.env["QUIMBI_SANDBOX_PORT"] in part for part in health)


@pytest.mark.slow
def test_image_command_serves_passes_its_healthcheck_and_stops_cleanly(
    installed_wheel, runtime_stage, tmp_path
):
    env = image_environment(runtime_stage, installed_wheel)
    _options, health_command = runtime_stage.healthcheck
    outside = tmp_path / "outside-the-repo"
    outside.mkdir()

    server = ServerProcess(command=runtime_stage.cmd, env=env, cwd=outside, bind_flags=False)
    assert runtime_stage.cmd[0] == "quimbi-sandbox"  # resolved on PATH, as in the image
    server.start()
    try:
        checked = subprocess.run(
            health_command, env=server.env, cwd=outside, capture_output=True, text=True, timeout=30
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        health = server.get("/_sandbox/health", key=None)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        # the installed wheel carries the docs page's assets
        asset = server.get("/docs/static/swagger-ui/swagger-ui-bundle.js", key=None)
        assert asset.status_code == 200 and b"SwaggerUIBundle" in asset.content
    finally:
        code = server.stop()
    assert code == 0, f"SIGTERM should stop the server cleanly, got exit code {code}"

    # and the same healthcheck fails once nobody answers on that port
    after = subprocess.run(
        health_command, env=server.env, cwd=outside, capture_output=True, text=True, timeout=30
    )
    assert after.returncode == 1
