"""The sandbox's HTTP/1.1 server (sandbox.http11), in-process, over raw sockets: framing,
keep-alive, pipelining, limits, malformed input, backpressure and stopping."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Awaitable, Callable

import pytest

from sandbox.http11 import MAX_LINE_BYTES, HttpServer, Request

BIG = 8 * 1024 * 1024


async def _echo(request: Request) -> None:
    """Says what it got; /slow answers after 0.2 s, /big answers 8 MiB, /head-sized
    announces a length of its own (as Flask does for HEAD)."""
    path = request.raw_path
    if path == "/slow":
        await asyncio.sleep(0.2)
    if path == "/big":
        request.respond(200, [("Content-Type", "text/plain")], b"x" * BIG)
        return
    headers = [("Content-Type", "application/json"), ("X-Seen", "1")]
    if path == "/head-sized":
        headers.append(("Content-Length", "1234"))
    said = {
        "method": request.method,
        "path": path,
        "version": request.version,
        "body": request.body.decode("latin-1"),
        "too_large": request.too_large,
        "headers": request.headers,
    }
    request.respond(200, headers, json.dumps(said).encode())


class _Served:
    def __init__(self, server: HttpServer, port: int) -> None:
        self.server = server
        self.port = port
        self.writers: list[asyncio.StreamWriter] = []

    async def connect(
        self, receive_buffer: int = 0
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        sock = socket.socket()
        if receive_buffer:  # set before connecting: it bounds the window the server sees
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.port))
        except OSError:
            sock.close()
            raise
        reader, writer = await asyncio.open_connection(sock=sock)
        self.writers.append(writer)
        return reader, writer


def _run(
    test: Callable[[_Served], Awaitable[None]],
    handler=_echo,
    max_body_bytes: int = 1000,
    keepalive_seconds: float = 75.0,
) -> None:
    async def scenario() -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        server = HttpServer(handler, max_body_bytes, keepalive_seconds)
        await server.start(sock)
        served = _Served(server, sock.getsockname()[1])
        try:
            await asyncio.wait_for(test(served), 20)
        finally:
            for writer in served.writers:
                writer.transport.abort()
            await server.stop(1.0)
            sock.close()

    asyncio.run(scenario())


async def _answer(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """One answer: the status line, the headers (names lowered), the body."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status, *lines = head.split("\r\n")[:-2]
    headers = {}
    for line in lines:
        name, _, value = line.partition(": ")
        assert name.lower() not in headers, f"{name} twice"
        headers[name.lower()] = value
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length and not status.startswith("HEAD") else b""
    return status, headers, body


async def _closed(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), 2) == b""
    except ConnectionResetError:
        return True


def _get(path: str, *headers: str, version: str = "1.1") -> bytes:
    return "\r\n".join([f"GET {path} HTTP/{version}", "Host: t", *headers, "", ""]).encode()


def test_keep_alive_by_default_in_1_1_and_on_request_in_1_0():
    async def test(served: _Served) -> None:
        reader, writer = await served.connect()
        for _ in range(3):
            writer.write(_get("/a"))
            status, headers, body = await _answer(reader)
            assert status == "HTTP/1.1 200 OK"
            assert "connection" not in headers and "date" in headers
            assert json.loads(body)["version"] == "1.1"
        writer.write(_get("/a", "Connection: keep-alive", version="1.0"))
        status, headers, _ = await _answer(reader)
        assert status == "HTTP/1.0 200 OK" and headers["connection"] == "keep-alive"
        writer.write(_get("/a", version="1.0"))  # 1.0 without keep-alive: the last
        status, headers, _ = await _answer(reader)
        assert status == "HTTP/1.0 200 OK" and "connection" not in headers
        assert await _closed(reader)

    _run(test)


def test_connection_close_is_honoured_and_what_follows_is_not_read():
    async def test(served: _Served) -> None:
        reader, writer = await served.connect()
        writer.write(_get("/a", "Connection: close") + _get("/never"))
        _, headers, body = await _answer(reader)
        assert headers["connection"] == "close" and json.loads(body)["path"] == "/a"
        assert await _closed(reader)

    _run(test)


def test_pipelined_requests_are_answered_in_order_one_at_a_time():
    started: list[str] = []

    async def handler(request: Request) -> None:
        started.append(request.raw_path)
        await _echo(request)

    async def test(served: _Served) -> None:
        reader, writer = await served.connect()
        writer.write(_get("/slow") + _get("/b") + _get("/c"))
        await asyncio.sleep(0.1)
        assert started == ["/slow"]  # /b waits for /slow's answer
        paths = [json.loads((await _answer(reader))[2])["path"] for _ in range(3)]
        assert paths == ["/slow", "/b", "/c"]

    _run(test, handler)


def test_chunked_bodies_reach_the_handler_whole():
    async def test(served: _Served) -> None:
        reader, writer = await served.connect()
        writer.write(
            b"POST /p HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
        )
        await asyncio.sleep(0.05)
        writer.write(b"6\r\n world\r\n0\r\n\r\n")
        said = json.loads((await _answer(reader))[2])
        assert said["body"] == "hello world" and not said["too_large"]
        assert ["Transfer-Encoding", "chunked"] in said["headers"]

    _run(test)


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_limit_is_handled_at_once_then_the_connection_closes(chunked):
    async def test(served: _Served) -> None:
        reader, writer = await served.connect()
        if chunked:
            writer.write(b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write(b"400\r\n" + b"x" * 1024 + b"\r\n")  # and never the last chunk
        else:
            writer.write(b"POST /p HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + b"x" * 100)
        _, headers, body = await _answer(reader)
        said = json.loads(body)
        assert said["too_large"] and said["body"] == ""
        assert headers["connection"] == "close"
        assert await _closed(reader)

    _run(test)


def test_100_continue_comes_before_the_body_unless_the_body_is_over_the_limit():
    async def test(served: _Served) -> None:
        reader, writer = await served.connect()
        writer.write(b"POST /p HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hello")
        assert json.loads((await _answer(reader))[2])["body"] == "hello"
        writer.write(b"POST /p HTTP/1.1\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
        status, headers, body = await _answer(reader)
        assert status == "HTTP/1.1 200 OK" and json.loads(body)["too_large"]
        assert await _closed(reader)

    _run(test)


def test_100_continue_waits_for_the_answers_before_it():
    async def test(served: _Served) -> None:
        reader, writer = await served.connect()
        writer.write(
            _get("/slow") + b"POST /p HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        assert json.loads((await _answer(reader))[2])["path"] == "/slow"
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"ok")
        assert json.loads((await _answer(reader))[2])["body"] == "ok"

    _run(test)


def test_head_answers_have_no_body_and_the_length_a_get_would_get():
    async def test(served: _Served) -> None:
        reader, writer = await served.connect()
        writer.write(b"HEAD /head-sized HTTP/1.1\r\n\r\n" + _get("/a"))
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"Content-Length: 1234\r\n" in head
        # The next bytes are the GET's answer: the HEAD's had no body.
        status, _, body = await _answer(reader)
        assert status == "HTTP/1.1 200 OK" and json.loads(body)["path"] == "/a"

    _run(test)


def test_answers_without_a_body_or_a_type():
    async def handler(request: Request) -> None:
        status = int(request.raw_path[1:])
        request.respond(status, [], b"" if status == 204 else b"raw")

    async def test(served: _Served) -> None:
        reader, writer = await served.connect()
        writer.write(_get("/204") + _get("/200"))
        status, headers, _ = await _answer(reader)
        assert status == "HTTP/1.1 204 No Content" and "content-length" not in headers
        _, headers, body = await _answer(reader)
        assert body == b"raw" and headers["content-type"] == "application/octet-stream"

    _run(test, handler)


@pytest.mark.parametrize(
    ("sent", "says"),
    [
        (b"GET /\x01 HTTP/1.1\r\n\r\n", "not valid HTTP/1.1"),
        (b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "not valid"),
        (b"GET /" + b"a" * MAX_LINE_BYTES + b" HTTP/1.1\r\n\r\n", "request target is over"),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (MAX_LINE_BYTES + 1) + b"\r\n\r\n", "header"),
        (b"GET / HTTP/1.1\r\n" + b"X-Many: aaaaaaaaaaaaaaaa\r\n" * 3000 + b"\r\n", "head"),
        (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n", "CONNECT"),
    ],
)
def test_malformed_requests_are_400_in_the_envelope_then_closed(sent, says, caplog):
    async def test(served: _Served) -> None:
        reader, writer = await served.connect()
        writer.write(_get("/first") + sent)
        assert json.loads((await _answer(reader))[2])["path"] == "/first"  # in order
        status, headers, body = await _answer(reader)
        assert status == "HTTP/1.1 400 Bad Request"
        assert headers["connection"] == "close"
        assert headers["content-type"] == "application/json"
        error = json.loads(body)["error"]
        assert error["code"] == "MALFORMED_REQUEST" and says in error["message"]
        assert await _closed(reader)

    with caplog.at_level(logging.INFO):
        _run(test)
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]


def test_a_head_sent_forever_is_refused_at_the_limit():
    async def test(served: _Served) -> None:
        reader, writer = await served.connect()
        writer.write(b"GET / HTTP/1.1\r\nX-Endless: ")
        try:
            for _ in range(200):
                writer.write(b"a" * 1024)
                await writer.drain()
        except ConnectionError:
            pass
        error = json.loads((await _answer(reader))[2])["error"]
        assert error["code"] == "MALFORMED_REQUEST" and "head" in error["message"]

    _run(test)


def test_an_upgrade_is_ignored_and_the_request_answered():
    async def test(served: _Served) -> None:
        reader, writer = await served.connect()
        writer.write(_get("/up", "Connection: Upgrade", "Upgrade: h2c") + _get("/next"))
        assert json.loads((await _answer(reader))[2])["path"] == "/up"
        assert json.loads((await _answer(reader))[2])["path"] == "/next"

    _run(test)


def test_idle_connections_are_closed_after_the_keep_alive_time():
    async def test(served: _Served) -> None:
        reader, writer = await served.connect()
        writer.write(_get("/a"))
        await _answer(reader)
        await asyncio.sleep(0.1)
        assert len(served.server.connections) == 1
        assert await asyncio.wait_for(reader.read(1), 3) == b""

    _run(test, keepalive_seconds=0.4)


def test_a_client_gone_mid_request_is_dropped_quietly(caplog):
    ended: list[str] = []

    async def handler(request: Request) -> None:
        await _echo(request)
        ended.append(request.raw_path)

    async def test(served: _Served) -> None:
        reader, writer = await served.connect()
        writer.write(_get("/slow"))
        await asyncio.sleep(0.05)
        writer.transport.abort()
        await asyncio.sleep(0.3)
        assert ended == ["/slow"] and not served.server.connections

    with caplog.at_level(logging.DEBUG, logger="sandbox"):
        _run(test, handler)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_large_answer_is_flushed_before_the_next_request_is_handled():
    started: list[str] = []

    async def handler(request: Request) -> None:
        started.append(request.raw_path)
        await _echo(request)

    async def test(served: _Served) -> None:
        reader, writer = await served.connect(receive_buffer=64 * 1024)
        writer.write(_get("/big") + _get("/big") + _get("/a"))
        await asyncio.sleep(0.3)
        assert started == ["/big"]  # the client reads nothing: the first answer waits
        for _ in range(2):
            _, _, body = await _answer(reader)
            assert len(body) == BIG
        assert json.loads((await _answer(reader))[2])["path"] == "/a"
        assert started == ["/big", "/big", "/a"]

    _run(test, handler)


def test_stopping_closes_idle_connections_and_finishes_the_requests_in_flight():
    async def test(served: _Served) -> None:
        idle_reader, idle_writer = await served.connect()
        idle_writer.write(_get("/a"))
        await _answer(idle_reader)
        reader, writer = await served.connect()
        writer.write(_get("/slow"))
        await asyncio.sleep(0.05)
        stopping = asyncio.ensure_future(served.server.stop(5.0))
        assert await _closed(idle_reader)
        _, headers, body = await _answer(reader)
        assert json.loads(body)["path"] == "/slow" and headers["connection"] == "close"
        assert await _closed(reader)
        await stopping
        with pytest.raises(OSError):
            await served.connect()

    _run(test)


def test_stopping_aborts_what_outlasts_the_grace():
    seen: list[str] = []

    async def handler(request: Request) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")  # as a task's would be: its clean-up runs
            raise

    async def test(served: _Served) -> None:
        reader, writer = await served.connect()
        writer.write(_get("/forever"))
        await asyncio.sleep(0.05)
        await served.server.stop(0.2)
        assert seen == ["cancelled"]
        assert await _closed(reader)

    _run(test, handler)


@pytest.mark.parametrize(("shared", "taken"), [(True, 1), (False, 3)])
def test_a_socket_shared_by_workers_gives_one_connection_per_wakeup(shared, taken):
    """Every worker is woken for a new connection; taking one each, they take turns
    instead of the first awake taking a whole burst (wrk's 8 connections)."""

    async def scenario() -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        server = HttpServer(_echo, 1000)
        await server.start(sock, shared=shared)
        asyncio.get_running_loop().remove_reader(sock.fileno())  # wakeups by hand below
        clients = [socket.create_connection(sock.getsockname()) for _ in range(3)]
        try:
            server._accept()  # one wakeup, three connections waiting
            await asyncio.sleep(0.05)
            assert len(server.connections) == taken
            left = 0
            while True:
                try:
                    sock.accept()[0].close()
                    left += 1
                except BlockingIOError:
                    break
            assert left == 3 - taken  # still waiting, for the other workers
        finally:
            for client in clients:
                client.close()
            await server.stop(1.0)
            sock.close()

    asyncio.run(scenario())
