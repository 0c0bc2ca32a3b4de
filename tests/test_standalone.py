"""A fresh clone passes on its own: nothing the suite reads lies beside the repository.

The repository's files are copied into a directory that has nothing else in it, and a
subset of the suite that reads the repository's documents (the guide, the README, the
contract, the Docker files) runs there. Then a sibling is put beside the copy and a test
that reads it must fail the run: the guard in tests/standalone.py is what catches it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.standalone import SiblingGuard

# Quick, and between them they read every document the suite checks.
SUBSET = [
    "tests/test_api_http.py",
    "tests/test_readme.py",
    "tests/test_openapi_spec.py",
    "tests/test_docs.py",
    "tests/test_compose.py",
]
JUNK = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.pyc", "*.egg-info", "build", "dist", "artifacts",
    ".pytest_cache", ".ruff_cache", ".hypothesis", "_bundled",
)  # fmt: skip


def repository_files() -> list[str]:
    """What a clone of the working tree would hold: tracked and new files, not ignored ones."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (ROOT / name).exists()]


def copy_alone(tmp_path: Path) -> Path:
    copy = tmp_path / "alone" / ROOT.name
    if (ROOT / ".git").exists():
        for name in repository_files():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    else:  # an unpacked sdist: no git to ask
        shutil.copytree(ROOT, copy, ignore=JUNK)
    return copy


def run_pytest(copy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *args],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_copy_with_nothing_beside_it_passes_and_a_test_reaching_out_fails(tmp_path):
    copy = copy_alone(tmp_path)
    assert sorted(p.name for p in copy.parent.iterdir()) == [ROOT.name]
    where = subprocess.run(
        [sys.executable, "-c", "import sandbox, contract_tests; print(sandbox.__file__)"],
        cwd=copy,
        env={**os.environ, "PYTHONPATH": str(copy)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(copy), "the copy imports another tree"

    alone = run_pytest(copy, *SUBSET)
    assert alone.returncode == 0, alone.stdout[-4000:] + alone.stderr[-2000:]

    # What the old guide test did: read the maintainers' copy from beside the repository.
    sibling = copy.parent / "shared" / "seed" / "INTEGRATION_GUIDE.md"
    sibling.parent.mkdir(parents=True)
    sibling.write_text("# the guide\n")
    (copy / "tests" / "test_reaches_out.py").write_text(
        "from tests.conftest import ROOT\n\n\n"
        "def test_reads_the_shared_guide():\n"
        "    path = ROOT.parent / 'shared' / 'seed' / 'INTEGRATION_GUIDE.md'\n"
        "    assert path.read_text()\n"
    )
    reaching = run_pytest(copy, "tests/test_reaches_out.py")
    assert reaching.returncode != 0, reaching.stdout
    assert "ReadOutsideRepository" in reaching.stdout
    assert "a fresh clone has nothing beside it" in reaching.stdout


def test_a_caught_refusal_still_fails_the_run(tmp_path):
    copy = copy_alone(tmp_path)
    (copy / "tests" / "test_swallows.py").write_text(
        "from tests.conftest import ROOT\n\n\n"
        "def test_swallows_the_refusal():\n"
        "    try:\n"
        "        (ROOT.parent / 'notes.txt').read_text()\n"
        "    except Exception:\n"
        "        pass\n"
    )
    result = run_pytest(copy, "tests/test_swallows.py")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Tests read files beside the repository" in result.stderr


def test_the_guard_refuses_siblings_only(tmp_path):
    root = tmp_path / "projects" / "quimbi-sandbox"
    guard = SiblingGuard(root)
    assert guard.active
    assert guard.outside(str(tmp_path / "projects" / "shared" / "guide.md"))
    assert guard.outside(str(root) + "-old/README.md")  # a prefix is not the repository
    assert not guard.outside(str(root / "tests" / "data" / "guide.md"))
    assert not guard.outside(str(tmp_path / "elsewhere.txt"))


def test_the_guard_stands_aside_where_everything_lives_beside_the_repository():
    assert not SiblingGuard(Path("/quimbi-sandbox")).active
    assert not SiblingGuard(Path.home() / "quimbi-sandbox").active
    assert not SiblingGuard(Path(sys.base_prefix).parent / "quimbi-sandbox").active
