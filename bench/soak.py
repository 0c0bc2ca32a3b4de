"""A soak: steady mixed load on the sandbox over the memory store and over Redis with two
workers, the RSS of every process sampled; growth after the warm-up should stay <= 5 %.

    python bench/soak.py                       # 3 minutes' warm-up, then 10 minutes
    python bench/soak.py --minutes 1 --warmup 20 --out /tmp/soak.md

Both sandboxes run at once, each driven at --rate requests a second (moderate on
purpose: the target is memory, not speed) by a mix of random-customer analyze calls,
ingest batches with unique order ids, faults by header and magic value, held answers,
invalid requests, retries too soon (judged by the behaviour checks) and journal reads;
at that rate the journal (1,000 entries) is at its cap within seconds. The ingested
tenant is reset every --reset-orders orders, so what stays stored is bounded: the soak
checks that nothing keeps what the sandbox let go. The warm-up lasts until --warmup
seconds have passed and both journals are full: 180 s by default, as each Redis worker
gets half its sandbox's calls and its answer cache (4,096 answers; about 2/3 of the calls
are cacheable reads) is full after ~120 s at the default rate. Then the RSS of the
sandbox, the Redis supervisor and each worker (redis-server too, reported, not judged)
is read every --sample-seconds. Writes a `## Soak` section into bench/RESULTS.md after the notes
marker (bench/run.py keeps it). Never run by the tests.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import random
import sys
import textwrap
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, RedisServer, Server, _smaps, _tree, free_port, order  # noqa: E402
from report import HIGH_LIMIT, write_soak_section  # noqa: E402

ANALYZE = "/api/intelligence/analyze"
INGEST = "/api/data/ingest_orders"
KEY, INGEST_KEY, INGEST_TENANT = "qpk_test_sandbox", "qpk_test_acme", "acme_outdoor"
TARGET_GROWTH = 5.0  # percent, per sandbox process
JOURNAL_SIZE = 1000  # the --journal-size default the sandboxes run with
CONNECTIONS = 2  # per sandbox; each a keep-alive connection on its own thread


@dataclass
class Call:
    kind: str
    method: str
    path: str
    body: bytes | None
    headers: dict[str, str]
    expect: frozenset[int]  # 0: the connection is reset, no answer


@dataclass
class Tally:
    """What one sandbox's load got back, per kind; shared by its threads."""

    sent: Counter = field(default_factory=Counter)
    unexpected: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    orders: int = 0
    resets: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, call: Call, status: int) -> None:
        with self.lock:
            self.sent[call.kind] += 1
            if status not in call.expect:
                self.unexpected[call.kind] += 1
                if len(self.examples) < 5:
                    self.examples.append(f"{call.kind}: {status} (wanted {sorted(call.expect)})")


def _analyze(customer: str, kind: str, expect: set[int], key: str = KEY, **headers: str) -> Call:
    body = json.dumps({"customer_id": customer, "context": {}}).encode()
    return Call(kind, "POST", ANALYZE, body, {"X-API-Key": key, **headers}, frozenset(expect))


class Mix:
    """Draws the next call of one connection; ids unique per sandbox, thread and call."""

    def __init__(self, label: str, thread_no: int, tally: Tally, reset_orders: int) -> None:
        self.rng = random.Random(f"{label}-{thread_no}")
        self.prefix = f"soak_{label}_{thread_no}"
        self.tally, self.reset_orders = tally, reset_orders
        self.batches = 0
        self.follow_up: Call | None = None

    def next(self) -> Call:
        if self.follow_up is not None:
            call, self.follow_up = self.follow_up, None
            return call
        with self.tally.lock:
            if self.tally.orders >= self.reset_orders:
                self.tally.orders = 0
                self.tally.resets += 1
                path = f"/_sandbox/reset?tenant={INGEST_TENANT}"
                return Call("reset tenant", "POST", path, b"", {}, frozenset({200}))
        roll = self.rng.random() * 100
        customer = f"soak_{self.rng.randrange(1_000_000)}"
        if roll < 55:
            return _analyze(customer, "analyze random", {200})
        if roll < 65:
            return self._ingest()
        if roll < 70:
            ingested = f"soak_cust_{self.rng.randrange(500)}"
            return _analyze(ingested, "analyze ingested", {200}, key=INGEST_KEY)
        if roll < 80:
            status = self.rng.choice(("503", "429", "500", "404"))
            call = _analyze(customer, "fault header", {int(status)}, **{"X-Sandbox-Fault": status})
            if self.rng.random() < 0.5:  # resent at once: a retry the behaviour checks flag
                self.follow_up = _analyze(customer, "retry too soon", {200})
            return call
        if roll < 85:
            return _analyze(customer, "latency header", {200}, **{"X-Sandbox-Latency": "10-40"})
        if roll < 89:
            magic = self.rng.choice(
                (("test_customer_flaky", {200, 503}), ("test_customer_unavailable", {503}),
                 ("test_customer_error_500", {500}))
            )  # fmt: skip
            if self.rng.random() < 0.25:
                return _analyze(customer, "magic value", {429}, key="qpk_test_ratelimited")
            return _analyze(magic[0], "magic value", magic[1])
        if roll < 94:
            body = self.rng.choice((b'{"context": {}}', b'{"customer_id": 7}', b'{"customer_'))
            headers = {"X-API-Key": KEY}
            return Call("invalid request", "POST", ANALYZE, body, headers, frozenset({400, 422}))
        if roll < 96:
            return _analyze(customer, "malformed fault", {200}, **{"X-Sandbox-Fault": "malformed"})
        if roll < 97:
            return _analyze(customer, "reset fault", {0}, **{"X-Sandbox-Fault": "reset"})
        path = self.rng.choice(("/_sandbox/requests", "/_sandbox/violations", "/_sandbox/coverage"))
        return Call("control read", "GET", path, None, {}, frozenset({200}))

    def _ingest(self) -> Call:
        self.batches += 1
        orders = [
            order(f"soak_cust_{self.rng.randrange(500)}", f"{self.prefix}_{self.batches}_{i}")
            for i in range(10)
        ]
        with self.tally.lock:
            self.tally.orders += len(orders)
        body = json.dumps({"source": "shopify", "orders": orders}).encode()
        headers = {"X-API-Key": INGEST_KEY}
        return Call("ingest 10 orders", "POST", INGEST, body, headers, frozenset({200}))


def drive(port: int, mix: Mix, tally: Tally, rate: float, stop: threading.Event) -> None:
    """One keep-alive connection at ``rate`` calls a second until ``stop``."""
    conn: http.client.HTTPConnection | None = None
    interval, next_at = 1.0 / rate, time.monotonic()
    while not stop.is_set():
        call = mix.next()
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = dict(call.headers)
        if call.body:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(call.method, call.path, body=call.body, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
            if response.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            status = 0
            conn.close()
            conn = None
        tally.record(call, status)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))


def journal_count(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/_sandbox/requests")
        return json.loads(conn.getresponse().read())["count"]
    finally:
        conn.close()


@dataclass
class Target:
    label: str
    server: Server
    tally: Tally = field(default_factory=Tally)

    def processes(self) -> dict[str, int]:
        """Role -> pid: the server, or the supervisor and its workers."""
        assert self.server.process is not None
        root, *workers = _tree(self.server.process.pid)
        if not workers:
            return {f"{self.label}: sandbox": root}
        named = {f"{self.label}: supervisor": root}
        named.update({f"{self.label}: worker {n}": pid for n, pid in enumerate(sorted(workers), 1)})
        return named


def sandbox(label: str, *extra: str) -> Target:
    port = free_port()
    command = [sys.executable, "-m", "sandbox", "serve", "--port", str(port)]
    return Target(label, Server(label, [*command, "--rate-limit", HIGH_LIMIT, *extra], port))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length after the warm-up")
    parser.add_argument("--warmup", type=float, default=180.0, help="seconds, at least")
    parser.add_argument("--rate", type=float, default=100.0, help="calls a second per sandbox")
    parser.add_argument("--sample-seconds", type=float, default=30.0)
    parser.add_argument("--reset-orders", type=int, default=2000, help="orders kept at most")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args()
    if args.minutes <= 0 or args.warmup < 0 or args.rate <= 0:
        parser.error("--minutes and --rate must be > 0, --warmup >= 0")

    redis_server = RedisServer()
    targets = [
        sandbox("memory"),
        sandbox("redis, 2 workers", "--store", redis_server.url(0), "--workers", "2"),
    ]
    stop = threading.Event()
    threads: list[threading.Thread] = []
    samples: list[tuple[float, dict[str, int]]] = []
    try:
        redis_server.start()
        for target in targets:
            target.server.start()
            for n in range(CONNECTIONS):
                mix = Mix(target.label.split(",")[0], n, target.tally, args.reset_orders)
                rate = args.rate / CONNECTIONS
                thread = threading.Thread(
                    target=drive, args=(target.server.port, mix, target.tally, rate, stop)
                )
                thread.start()
                threads.append(thread)
        started = time.monotonic()
        print(f"Warm-up: at least {args.warmup:g} s and until both journals are full ...")
        while True:
            time.sleep(2)
            counts = [journal_count(t.server.port) for t in targets]
            if time.monotonic() - started >= args.warmup and min(counts) >= JOURNAL_SIZE:
                break
        warmup_seconds = time.monotonic() - started

        def sample() -> None:
            pids = {role: pid for t in targets for role, pid in t.processes().items()}
            assert redis_server.process is not None
            pids["redis-server (not judged)"] = redis_server.process.pid
            rss = {role: _smaps(pid, "Rss:") for role, pid in pids.items()}
            samples.append((time.monotonic() - started - warmup_seconds, rss))
            shown = "  ".join(f"{role} {value / 2**20:.1f}" for role, value in rss.items())
            print(f"  t={samples[-1][0]:5.0f} s  RSS MB: {shown}", flush=True)
            for target in targets:
                if target.server.process.poll() is not None:
                    raise RuntimeError(f"{target.label} exited; see {target.server.log}")

        print(f"Soak: {args.minutes:g} minutes, RSS every {args.sample_seconds:g} s ...")
        sample()
        ends = time.monotonic() + args.minutes * 60
        while time.monotonic() < ends:
            time.sleep(min(args.sample_seconds, max(0.0, ends - time.monotonic())))
            sample()
        journals = {t.label: journal_count(t.server.port) for t in targets}
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        for target in targets:
            target.server.stop()
        redis_server.stop()

    section = soak_section(args, targets, samples, warmup_seconds, journals)
    write_soak_section(args.out, section)
    print("\n".join(section))
    print(f"Wrote the Soak section of {args.out}")


def soak_section(args, targets, samples, warmup_seconds, journals) -> list[str]:
    first, last = samples[0][1], samples[-1][1]
    rows, met_all = [], True
    for role in first:
        growth = (last[role] - first[role]) / first[role] * 100
        peak = max(s[1][role] for s in samples)
        judged = "not judged" not in role
        met = growth <= TARGET_GROWTH
        met_all &= met or not judged
        verdict = ("yes" if met else "**no**") if judged else "-"
        rows.append(
            f"| {role} | {first[role] / 2**20:.1f} | {peak / 2**20:.1f} | {last[role] / 2**20:.1f} "
            f"| {growth:+.1f} % | {verdict} |"
        )
    shown = samples[:: max(1, len(samples) // 5)]
    if shown[-1] is not samples[-1]:
        shown.append(samples[-1])
    sample_rows = [
        f"| {t / 60:.1f} | " + " | ".join(f"{rss[role] / 2**20:.1f}" for role in first) + " |"
        for t, rss in shown
    ]
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    intro = (
        f"Written by `python bench/soak.py` ({today}): {args.minutes:g} minutes of steady mixed"
        f" load after a {warmup_seconds:.0f} s warm-up, at {args.rate:g} calls a second per"
        " sandbox on 2 keep-alive connections, the sandbox on the memory store and on Redis"
        f" with `--workers 2` at the same time (both `--rate-limit {HIGH_LIMIT}`, journal size"
        f" {JOURNAL_SIZE}). The mix: analyze for random customers (55 %), ingest batches of 10"
        " unique orders (10 %) and analyze of those customers (5 %), `X-Sandbox-Fault`"
        " 503/429/500/404 (10 %, half of them resent at once, which the behaviour checks"
        " flag), `X-Sandbox-Latency: 10-40` (5 %), magic fault customers and the rate-limited"
        " key (4 %), invalid bodies (5 %), `malformed` and `reset` faults (3 %),"
        " journal/violations/coverage reads (1 %). The journal is at its cap and the answer"
        " caches (4,096 answers per process) are full from the warm-up on; the ingesting"
        f" tenant is reset every {args.reset_orders:,} orders, so the data kept stays"
        " bounded. RSS per process after the warm-up, its peak, and at the end; target:"
        f" growth <= {TARGET_GROWTH:g} % for every sandbox process"
        f" (**{'met' if met_all else 'not met'}**)."
    )
    lines = [
        "## Soak",
        "",
        *textwrap.wrap(intro, width=88),
        "",
        "| Process | RSS after warm-up (MB) | peak (MB) | at the end (MB) | growth | met |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "RSS (MB) over the soak:",
        "",
        "| minute | " + " | ".join(first) + " |",
        "|---|" + "---|" * len(first),
        *sample_rows,
        "",
    ]
    for target in targets:
        tally = target.tally
        sent = sum(tally.sent.values())
        unexpected = sum(tally.unexpected.values())
        kinds = ", ".join(f"{kind} {count:,}" for kind, count in tally.sent.most_common())
        lines.append(
            f"- **{target.label}**: {sent:,} calls ({kinds}); {unexpected:,} answered other than"
            f" expected{': ' + '; '.join(tally.examples) if tally.examples else ''}; journal"
            f" {journals[target.label]:,} entries at the end; tenant reset {tally.resets} times."
        )
    return [*lines, ""]


if __name__ == "__main__":
    main()
