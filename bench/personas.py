"""How fast the customer model is: analyze for 10,000 distinct ids, in process.

Run: .venv/bin/python bench/personas.py [--ids 10000]
Prints per-id cost cold (generate + analyse) and warm (cached history + analyse).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from sandbox.personas.model import CustomerModel, load_magic_customers
from sandbox.resources import fixtures_dir


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ids", type=int, default=10_000)
    args = parser.parse_args()
    model = CustomerModel(
        0, load_magic_customers(fixtures_dir() / "customers.yaml"), cache_size=args.ids
    )
    ids = [f"bench_customer_{i}" for i in range(args.ids)]
    start = time.perf_counter()
    for customer_id in ids:
        model.analysis(model.history("linda_quilting", customer_id))
    cold = time.perf_counter() - start
    start = time.perf_counter()
    for customer_id in ids:
        model.analysis(model.history("linda_quilting", customer_id))
    warm = time.perf_counter() - start
    print(f"python {platform.python_version()}, {os.cpu_count()} cores")
    print(
        f"{args.ids} distinct ids: cold {cold:.2f}s ({cold / args.ids * 1e6:.0f} us/id), "
        f"warm {warm:.2f}s ({warm / args.ids * 1e6:.0f} us/id)"
    )


if __name__ == "__main__":
    main()
