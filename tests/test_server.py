"""The HTTP server around the app (sandbox.server): bodies, held answers, shutdown."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import requests
from aiohttp.test_utils import RawTestServer

from sandbox.config import Settings
from sandbox.server import WsgiBridge
from tests.conftest import DEFAULT_KEY, ServerProcess

ANALYZE = "/api/intelligence/analyze"
HEADERS = {"Content-Type": "application/json", "X-API-Key": DEFAULT_KEY}


def _chunks(total: int, size: int = 65536):
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        yield b" " * piece
        sent += piece


def test_bodies_over_the_limit_are_413_with_or_without_a_length():
    with ServerProcess("--max-body-bytes", "1000") as server:
        declared = requests.post(server.url + ANALYZE, data=b"x" * 5000, headers=HEADERS)
        chunked = requests.post(server.url + ANALYZE, data=_chunks(200_000), headers=HEADERS)
        for response in (declared, chunked):
            assert response.status_code == 413
            assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
        # Chunked and under the limit: read whole, de-chunked, and answered.
        body = json.dumps({"customer_id": "test_customer_high_ltv"}).encode()
        small = requests.post(
            server.url + ANALYZE, data=iter([body[:10], body[10:]]), headers=HEADERS
        )
        assert small.status_code == 200
        assert small.json()["customer_id"] == "test_customer_high_ltv"


def test_percent_encoded_paths_reach_the_app_decoded():
    with ServerProcess() as server:
        response = requests.get(
            server.url + "/api/insights/benchmarks/e%63ommerce", headers=HEADERS, timeout=5
        )
        assert response.status_code == 200, response.text
        assert response.json()["industry"] == "ecommerce"


def test_held_answers_wait_side_by_side():
    """64 answers held 2 s each: on timers they all finish in about 2 s; one by one, or
    eight at a time on threads, they would need 128 s or 16 s."""
    body = json.dumps({"customer_id": "cust_1"})
    with ServerProcess("--rate-limit", "off") as server:

        def held(_: int) -> int:
            headers = {**HEADERS, "X-Sandbox-Latency": "2000"}
            return requests.post(server.url + ANALYZE, data=body, headers=headers).status_code

        started = time.monotonic()
        with ThreadPoolExecutor(64) as pool:
            statuses = list(pool.map(held, range(64)))
        elapsed = time.monotonic() - started
        assert statuses == [200] * 64
        assert 2.0 <= elapsed < 12.0, f"64 held answers took {elapsed:.1f} s"
        journal = requests.get(server.url + "/_sandbox/requests", timeout=5).json()["requests"]
        # The hold happens after the app is done, and still counts in the journal.
        assert all(entry["duration_ms"] >= 2000 for entry in journal)


def test_sigterm_lets_the_requests_in_flight_finish():
    server = ServerProcess().start()
    outcome: dict[str, int] = {}

    def slow() -> None:
        headers = {**HEADERS, "X-Sandbox-Latency": "1500"}
        body = json.dumps({"customer_id": "cust_1"})
        outcome["status"] = requests.post(
            server.url + ANALYZE, data=body, headers=headers, timeout=10
        ).status_code

    caller = threading.Thread(target=slow)
    caller.start()
    time.sleep(0.5)  # the request is being held by now
    assert server.stop() == 0
    caller.join(timeout=10)
    assert outcome == {"status": 200}


def test_a_failing_bridge_still_answers_with_the_envelope():
    def broken_app(environ, start_response):
        return [b"never started"]  # start_response was never called

    async def scenario() -> tuple[int, dict]:
        bridge = WsgiBridge(broken_app, Settings())
        async with RawTestServer(bridge.handle, host="127.0.0.1") as server:
            async with aiohttp.ClientSession() as session:
                async with session.get(server.make_url("/anything")) as response:
                    return response.status, await response.json()

    status, body = asyncio.run(scenario())
    assert status == 500
    assert body == {"error": {"code": "INTERNAL_ERROR", "message": "An internal error occurred."}}


def test_head_answers_carry_the_length_a_get_would_get():
    with ServerProcess() as server:
        for path in ("/openapi.yaml", "/api/insights/my-position"):
            got = requests.get(server.url + path, headers=HEADERS, timeout=5)
            head = requests.head(server.url + path, headers=HEADERS, timeout=5)
            assert head.status_code == got.status_code == 200
            assert head.content == b""
            assert int(head.headers["Content-Length"]) == len(got.content), path
