"""Just enough of a Dockerfile parser for our own Dockerfile: stages and instructions.

Handles comments, backslash continuations, `FROM ... AS name`, `ENV k=v ...` (shell
quoting) and exec-form (JSON) `CMD` / `HEALTHCHECK ... CMD`. The tests read the image's
commands from here rather than restating them, so a change to the Dockerfile is what
they run.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"no {keyword} in stage {self.name or self.base}"
        return found[-1]

    @property
    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for arguments in self.all("ENV"):
            for pair in shlex.split(arguments):
                name, sep, value = pair.partition("=")
                assert sep, f"ENV {arguments!r}: use the NAME=value form"
                values[name] = value
        return values

    @property
    def cmd(self) -> list[str]:
        return exec_form(self.last("CMD"))

    @property
    def healthcheck(self) -> tuple[dict[str, str], list[str]]:
        """The HEALTHCHECK's ``--option=value`` pairs and its exec-form command."""
        options_text, sep, command = self.last("HEALTHCHECK").partition("CMD ")
        assert sep, "HEALTHCHECK without CMD"
        options = dict(option.removeprefix("--").split("=", 1) for option in options_text.split())
        return options, exec_form(command)


def exec_form(text: str) -> list[str]:
    command = json.loads(text)
    assert isinstance(command, list) and all(isinstance(part, str) for part in command), (
        f"not an exec-form (JSON array) command: {text}"
    )
    return command


def logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append((pending + stripped).strip())
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    return lines


def parse_dockerfile(path: Path) -> list[Stage]:
    stages: list[Stage] = []
    for line in logical_lines(path.read_text(encoding="utf-8")):
        keyword, _, arguments = line.partition(" ")
        keyword, arguments = keyword.upper(), arguments.strip()
        if keyword == "FROM":
            words = arguments.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
            continue
        assert stages, f"{keyword} before the first FROM"
        stages[-1].instructions.append(Instruction(keyword, arguments))
    return stages
