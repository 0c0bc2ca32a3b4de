from __future__ import annotations

import re
import subprocess
import sys

import pytest

from sandbox.config import ConfigError, Settings
from tests.conftest import ServerProcess, serve_must_refuse


def test_flags_win_over_env_which_wins_over_defaults():
    env = {
        "QUIMBI_SANDBOX_PORT": "9001",
        "QUIMBI_SANDBOX_SEED": "3",
        "QUIMBI_SANDBOX_STRICT": "true",
    }
    settings = Settings.from_sources(env, {"seed": "4", "host": None})
    assert (settings.port, settings.seed, settings.strict, settings.host) == (
        9001,
        4,
        True,
        "127.0.0.1",
    )
    assert Settings.from_sources({}, {}) == Settings()


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"QUIMBI_SANDBOX_PORT": "http"}, "QUIMBI_SANDBOX_PORT"),
        ({"QUIMBI_SANDBOX_PORT": "70000"}, "0..65535"),
        ({"QUIMBI_SANDBOX_CUSTOMERS": "some"}, "open, strict"),
        ({"QUIMBI_SANDBOX_STRICT": "maybe"}, "true or false"),
    ],
)
def test_bad_settings_name_the_source(env, needle):
    with pytest.raises(ConfigError, match=needle):
        Settings.from_sources(env)


@pytest.mark.parametrize("command", ["serve", "proxy"])
def test_every_setting_is_a_flag_and_an_env_var(command):
    help_text = subprocess.run(
        [sys.executable, "-m", "sandbox", command, "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for option in Settings.option_fields(command):
        assert "--" + option.name.replace("_", "-") in help_text
        assert "QUIMBI_SANDBOX_" + option.name.upper() in help_text.replace("\n", "").replace(
            " ", ""
        )
    # A command's own settings are not offered by the other, which would ignore them.
    own = [o for o in Settings.option_fields() if o.metadata["command"] is not None]
    assert {o.metadata["command"] for o in own} == {"serve", "proxy"}
    for option in own:
        flag = "--" + option.name.replace("_", "-")
        offered = re.search(rf"^\s+{flag}[ ,\n]", help_text, re.M) is not None
        assert offered == (option.metadata["command"] == command), flag


def test_bad_config_exits_2_with_a_message(tmp_path):
    serve_must_refuse("--keys", str(tmp_path / "none.yaml"), says="cannot read keys file")


def test_sigterm_stops_the_server_cleanly():
    server = ServerProcess().start()
    assert server.get("/_sandbox/health", key=None).json()["status"] == "ok"
    assert server.stop() == 0


def test_health_needs_no_key_and_reports_the_version(server):
    from sandbox import __version__

    response = server.get("/_sandbox/health", key=None)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}


def test_console_script_is_declared():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["quimbi-sandbox"] == "sandbox.cli:main"
