"""Start-up time: process start to the first 200 on analyze, as bench/run.py measures it.

    python bench/startup.py [--runs 7] [--compare DIR ...] [--as-is]

Starts `python -m sandbox serve` (the way bench/harness.Server does) ``--runs`` times
from this checkout and from every ``--compare`` directory (another checkout of the
repository, e.g. `git archive` of an older commit), interleaved so a busy shared
machine weighs on all alike, and prints each one's median and spread, and the median
CPU time the server had used by its first 200 (steadier on a busy machine). Never run by
the tests. Every checkout's modules are compiled to bytecode first, as pip does when it
installs the wheel (the Docker image): with PYTHONDONTWRITEBYTECODE set and no
__pycache__, each start would also compile the sandbox's source (~70 ms).
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402  (bench/ is not a package)


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used: unlike the wall time, not inflated when
    other work on the shared machine takes the cores (so A/B differences show sooner)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_once(root: Path) -> tuple[float, float]:
    port = harness.free_port()
    command = [sys.executable, "-m", "sandbox", "serve", "--port", str(port)]
    server = harness.Server(root.name, [*command, "--rate-limit", "1000000/minute"], port)
    previous, harness.ROOT = harness.ROOT, root  # `-m sandbox` imports from the cwd
    try:
        server.start(timeout=30.0)
        assert server.process is not None
        cpu = cpu_seconds(server.process.pid)
    finally:
        harness.ROOT = previous
        server.stop()
        if server.log is not None:
            server.log.unlink(missing_ok=True)
    assert server.startup_seconds is not None
    return server.startup_seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--compare", type=Path, action="append", default=[])
    parser.add_argument(
        "--as-is",
        action="store_true",
        help="do not compile the checkouts first (with PYTHONDONTWRITEBYTECODE set and no "
        "__pycache__, every start compiles the source, as bench/run.py may)",
    )
    args = parser.parse_args()
    roots = [harness.ROOT, *(path.resolve() for path in args.compare)]
    times: dict[Path, list[tuple[float, float]]] = {root: [] for root in roots}
    for root in roots if not args.as_is else ():
        compileall.compile_dir(root / "sandbox", quiet=1)
    start_once(roots[0])  # warm the page cache, not counted
    for _ in range(args.runs):
        for root in roots:
            times[root].append(start_once(root))
    for root in roots:
        walls = sorted(wall for wall, _ in times[root])
        cpus = [cpu for _, cpu in times[root]]
        print(
            f"{str(root):40} median {statistics.median(walls) * 1000:4.0f} ms"
            f" (min {walls[0] * 1000:4.0f}, max {walls[-1] * 1000:4.0f});"
            f" CPU median {statistics.median(cpus) * 1000:4.0f} ms"
        )


if __name__ == "__main__":
    main()
