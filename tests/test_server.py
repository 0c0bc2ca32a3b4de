"""The HTTP server around the app (sandbox.server): bodies, held answers, shutdown."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from sandbox.config import Settings
from sandbox.http11 import HttpServer
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


async def _bridged(app, raw_request: bytes) -> bytes:
    """What ``app`` behind the bridge, on our server, answers ``raw_request`` (one answer,
    then the connection closes)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    sock.setblocking(False)
    bridge = WsgiBridge(app, Settings())
    server = HttpServer(bridge.handle, bridge.max_body_bytes)
    await server.start(sock)
    try:
        reader, writer = await asyncio.open_connection(*sock.getsockname())
        writer.write(raw_request)
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return answer
    finally:
        await server.stop(1.0)
        sock.close()


def _split(answer: bytes) -> tuple[bytes, bytes]:
    status_and_headers, _, body = answer.partition(b"\r\n\r\n")
    return status_and_headers, body


def test_a_failing_bridge_still_answers_with_the_envelope():
    def broken_app(environ, start_response):
        return [b"never started"]  # start_response was never called

    head, body = _split(
        asyncio.run(_bridged(broken_app, b"GET /anything HTTP/1.1\r\nConnection: close\r\n\r\n"))
    )
    assert head.startswith(b"HTTP/1.1 500 ")
    assert b"\r\nContent-Type: application/json" in head
    assert json.loads(body) == {
        "error": {"code": "INTERNAL_ERROR", "message": "An internal error occurred."}
    }


def test_a_header_with_a_line_break_is_never_sent():
    """A header value can't split the answer (response splitting): the envelope instead."""

    def splitting_app(environ, start_response):
        start_response("200 OK", [("X-Echo", "a\r\nSet-Cookie: stolen=1")])
        return [b"{}"]

    head, body = _split(
        asyncio.run(_bridged(splitting_app, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"))
    )
    assert head.startswith(b"HTTP/1.1 500 ") and b"stolen" not in head
    assert json.loads(body)["error"]["code"] == "INTERNAL_ERROR"


def test_the_app_gets_the_request_as_pep_3333_says():
    seen = {}

    def recording_app(environ, start_response):
        seen.update(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    asyncio.run(
        _bridged(
            recording_app,
            b"POST /a%20b/caf%C3%A9?x=1&y=%20 HTTP/1.1\r\nContent-Type: text/plain\r\n"
            b"X-Twice: 1\r\nX-Twice: 2\r\nX-Name: caf\xc3\xa9\r\nConnection: close\r\n"
            b"Content-Length: 4\r\n\r\nbody",
        )
    )
    assert seen["REQUEST_METHOD"] == "POST"
    assert seen["PATH_INFO"] == "/a b/caf\xc3\xa9"  # the UTF-8 bytes, as latin-1
    assert seen["QUERY_STRING"] == "x=1&y=%20"
    assert seen["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert seen["REMOTE_ADDR"] == "127.0.0.1"
    assert seen["CONTENT_TYPE"] == "text/plain" and seen["CONTENT_LENGTH"] == "4"
    assert seen["HTTP_X_TWICE"] == "1, 2"
    assert seen["HTTP_X_NAME"] == "café"  # decoded as UTF-8, which the proxy re-encodes
    assert "HTTP_CONTENT_LENGTH" not in seen and "HTTP_CONTENT_TYPE" not in seen
    assert seen["wsgi.input"].read() == b"body" and seen["sandbox.body"] == b"body"


def test_head_answers_carry_the_length_a_get_would_get():
    with ServerProcess() as server:
        for path in ("/openapi.yaml", "/api/insights/my-position"):
            got = requests.get(server.url + path, headers=HEADERS, timeout=5)
            head = requests.head(server.url + path, headers=HEADERS, timeout=5)
            assert head.status_code == got.status_code == 200
            assert head.content == b""
            assert int(head.headers["Content-Length"]) == len(got.content), path
