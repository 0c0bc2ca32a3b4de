"""What one generated answer costs: drawing the case and encoding its body.

    python bench/generated_answers.py [--cases N]

Draws N cases of every operation for every documented status (after a warm-up case
that builds the strategies, which happens once per process), and prints the median
and 90th percentile over all of them, then the median per operation for 200 (the
largest bodies). Never run by the tests: the README's figure comes from here.
"""

from __future__ import annotations

import argparse
import statistics
import time

from sandbox.generated import AnswerGenerator, CaseId
from sandbox.spec import load_contract


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=60, help="cases per operation and status")
    args = parser.parse_args()
    generator = AnswerGenerator(load_contract())
    everything: list[float] = []
    ok: dict[str, list[float]] = {}
    for operation_id in generator.contract.operations:
        for status in generator.statuses(operation_id):
            generator.case(CaseId(0, operation_id, -1, status)).encoded()  # builds strategies
            for case in range(args.cases):
                started = time.perf_counter()
                generator.case(CaseId(0, operation_id, case, status)).encoded()
                elapsed = (time.perf_counter() - started) * 1000
                everything.append(elapsed)
                if status == 200:
                    ok.setdefault(operation_id, []).append(elapsed)
    everything.sort()
    print(
        f"{len(everything)} answers: median {statistics.median(everything):.2f} ms, "
        f"p90 {everything[int(len(everything) * 0.9)]:.2f} ms"
    )
    for operation_id, times in ok.items():
        print(f"  {operation_id} 200: median {statistics.median(times):.2f} ms")


if __name__ == "__main__":
    main()
