"""The suite stands alone: no test reads anything beside the repository.

A fresh clone has no siblings (the maintainers' shared folder exists on no user's machine),
so a test that opens `<repo>/../anything` passes here and fails for everyone else. An
audit hook watches every file this process opens and refuses the ones that lie beside
the repository. It only guards where "beside the repository" means something: when the
repository's parent is `/`, the home directory or the temporary directory, or holds Python
itself, everything lives there and nothing is refused (tests/test_standalone.py still runs
a subset from a copy with no siblings).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


class ReadOutsideRepository(RuntimeError):
    """Not an OSError, so no `except OSError` in the code under test can swallow it."""


class SiblingGuard:
    def __init__(self, root: Path) -> None:
        self.root = os.path.abspath(root)
        self.parent = os.path.dirname(self.root)
        self.refused: list[str] = []
        self.active = self._meaningful()

    def _meaningful(self) -> bool:
        shared_homes = [
            "/",
            os.path.expanduser("~"),
            tempfile.gettempdir(),
            sys.prefix,
            sys.base_prefix,
        ]
        return not any(
            self._within(home, self.parent) and not self._within(home, self.root)
            for home in shared_homes
        )

    @staticmethod
    def _within(path: str, directory: str) -> bool:
        return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)

    def outside(self, path: str) -> bool:
        """True when ``path`` is beside the repository: in its parent, not in it."""
        path = os.path.abspath(path)
        return self._within(path, self.parent) and not self._within(path, self.root)

    def audit(self, event: str, args: tuple) -> None:
        if event != "open" or not self.active:
            return
        target = args[0]
        if isinstance(target, int):
            return  # an already-open descriptor
        target = os.fsdecode(target)
        if self.outside(target):
            self.refused.append(target)
            raise ReadOutsideRepository(
                f"{target} is outside the repository ({self.root}); a fresh clone has "
                "nothing beside it: copy what the test needs into the repository"
            )

    def install(self) -> None:
        sys.addaudithook(self.audit)
