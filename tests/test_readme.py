"""The README is the user's reference: every option, magic value and endpoint is in it."""

from __future__ import annotations

import re

import pytest
import yaml

from contract_tests.cli import build_parser
from sandbox.app import create_app
from sandbox.config import ENV_PREFIX, Settings
from sandbox.errors import ApiError
from sandbox.resources import fixtures_dir
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def all_subclasses(cls: type) -> list[type]:
    return [cls, *(s for sub in cls.__subclasses__() for s in all_subclasses(sub))]


def test_starts_with_the_two_commands_and_ci_runs_the_second():
    first_block = re.search(r"```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert len(first_block) == 2
    assert "quimbi-sandbox serve" in first_block[0]
    assert first_block[1] == "bash scripts/test.sh"
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("option", Settings.option_fields(), ids=lambda o: o.name)
def test_every_setting_has_its_flag_and_env_var(option):
    assert f"`--{option.name.replace('_', '-')}" in README
    assert f"`{ENV_PREFIX}{option.name.upper()}`" in README


def test_every_contract_kit_flag():
    for action in build_parser()._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert f"`{flag}" in README, flag


def test_every_magic_customer_and_key():
    for name in ("customers.yaml", "faults.yaml"):
        document = yaml.safe_load((fixtures_dir() / name).read_text())
        for customer_id in document["customers"]:
            assert f"`{customer_id}`" in README, customer_id
    for key in yaml.safe_load((fixtures_dir() / "keys.yaml").read_text())["keys"]:
        assert f"`{key}`" in README, key


def test_every_control_endpoint_and_sandbox_header():
    app = create_app()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/_sandbox/"):
            path = re.sub(r"<(?:\w+:)?\w+>", "<id>", rule.rule)
            assert f"`{path}`" in README, path
    for header in ("X-Sandbox-Fault", "X-Sandbox-Latency", "X-Sandbox-Fault-Injected"):
        assert f"`{header}" in README, header


def test_every_error_code():
    for cls in all_subclasses(ApiError):
        assert f"`{cls.code}`" in README, cls.code


def test_the_try_it_answer_is_what_the_sandbox_says():
    shown = re.search(r"## Try it.*?```json\n(.*?)\n```", README, re.S).group(1)
    client = create_app().test_client()
    response = client.post(
        "/api/intelligence/analyze",
        json={"customer_id": "test_customer_high_ltv", "context": {}},
        headers={"X-API-Key": "qpk_live_abc123xyz"},
    )
    assert response.get_data(as_text=True) == shown


def test_every_client_kit_flag_and_generated_answer_header():
    from contract_tests.client.command import build_parser as client_parser

    for action in client_parser()._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert f"`{flag}" in README, flag
    for header in ("X-Sandbox-Response", "X-Sandbox-Case"):
        assert f"`{header}" in README, header
    assert "## Verify your client" in README or "### Verify your client" in README
