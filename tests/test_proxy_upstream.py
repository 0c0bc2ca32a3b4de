"""The proxy's upstream client (sandbox.proxy.upstream) against scripted raw-socket servers:
HTTP/1.1 framing (lengths, chunks, to-the-close, HEAD, interim 1xx), the kept-alive pool
(reuse, Connection: close, an idle connection the upstream dropped, the pool's bound),
and every failure named (timeout, reset, unreachable, bad-answer, over the size cap).
In-process: each test runs its own event loop and server on a free 127.0.0.1 port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from sandbox.config import Settings
from sandbox.proxy import upstream as upstream_module
from sandbox.proxy.judge import ResponseJudge
from sandbox.proxy.upstream import Upstream
from sandbox.spec import load_contract
from tests.conftest import free_port

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[bool]]
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class _Exchange:
    """Stands in for sandbox.proxy.path.Exchange: says what the client made of it."""

    def complete(self, status, headers, body):
        return ("answer", status, headers, body)

    def fail(self, upstream, failure, reason):
        return ("failed", failure, reason)


class _Scripted:
    """A raw server: reads each request head (and its Content-Length body), then runs the
    script, which writes what it likes and says whether to keep reading requests."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.port = free_port()
        self.accepted = 0
        self.requests: list[bytes] = []

    async def __aenter__(self) -> _Scripted:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                if not await self.script(reader, writer, request):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _upstream(port: int, path: str = "", timeout: float = 2.0, key: str | None = None):
    return Upstream(
        Settings(
            upstream=f"http://127.0.0.1:{port}{path}",
            upstream_timeout=timeout,
            upstream_api_key=key,
        )
    )


async def _relay(upstream: Upstream, method: str = "POST", path: str = "/api/x", **kw):
    headers = kw.get("headers", [("Content-Type", "application/json"), ("X-API-Key", "k")])
    return await upstream.relay(method, path, headers, kw.get("body", b"{}"), _Exchange())


def _run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 20))


def test_requests_go_out_byte_for_byte_and_reuse_one_connection():
    async def ok(reader, writer, request):
        writer.write(OK)
        return True

    async def test():
        async with _Scripted(ok) as server:
            upstream = _upstream(server.port, path="/prefix", key="qpk_live_real")
            for _ in range(20):
                result = await _relay(
                    upstream,
                    path="/api/a%20b?x=1&y=%C3%A9",
                    headers=[
                        ("X-API-Key", "qpk_test_sandbox"),
                        ("X-Name", "café"),  # the server decodes the bytes as UTF-8
                        ("Connection", "keep-alive, X-Hop"),
                        ("X-Hop", "hop"),
                        ("X-Sandbox-Fault", "none"),
                        ("Expect", "100-continue"),
                    ],
                    body=b'{"a":1}',
                )
                assert result == (
                    "answer",
                    200,
                    [
                        ("Content-Type", "application/json"),
                        ("Content-Length", "2"),
                    ],
                    b"{}",
                )
            await upstream.close()
        assert server.accepted == 1
        assert server.requests[0] == (
            b"POST /prefix/api/a%20b?x=1&y=%C3%A9 HTTP/1.1\r\n"
            + f"Host: 127.0.0.1:{server.port}\r\n".encode()
            + b"X-Name: caf\xc3\xa9\r\n"
            b"X-API-Key: qpk_live_real\r\n"
            b"Content-Length: 7\r\n\r\n"
            b'{"a":1}'
        )

    _run(test)


def test_chunked_to_the_close_head_and_interim_answers_are_read_whole():
    answers = {
        b"/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
        b"/head": b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
        b"/interim": b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n" + OK,
        b"/empty": b"HTTP/1.1 204 No Content\r\n\r\n",
    }

    async def script(reader, writer, request):
        target = request.split(b" ")[1]
        if target == b"/close":  # no length: the body runs to the end of the connection
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
            return False
        writer.write(answers[target])
        return True

    async def test():
        async with _Scripted(script) as server:
            upstream = _upstream(server.port)
            chunked = await _relay(upstream, path="/chunked")
            assert chunked[1] == 200 and chunked[3] == b"abcdefg"
            assert chunked[2] == []  # Transfer-Encoding is the hop's own
            head = await _relay(upstream, "HEAD", "/head", body=b"")
            assert head == ("answer", 200, [("Content-Length", "1234")], b"")
            interim = await _relay(upstream, path="/interim")
            assert interim[1] == 200 and interim[3] == b"{}"
            assert interim[2] == [("Content-Type", "application/json"), ("Content-Length", "2")]
            assert (await _relay(upstream, path="/empty"))[1:] == (204, [], b"")
            assert server.accepted == 1  # all of these on one connection
            closing = await _relay(upstream, path="/close")
            assert closing[1] == 200 and closing[3] == b"all of it"
            assert (await _relay(upstream, path="/chunked"))[3] == b"abcdefg"
            assert server.accepted == 2  # the closed one was not reused
            await upstream.close()

    _run(test)


def test_an_idle_connection_the_upstream_dropped_is_not_reused():
    async def once(reader, writer, request):
        writer.write(OK)
        await writer.drain()
        return False  # the upstream closes every connection after one answer (no header)

    async def test():
        async with _Scripted(once) as server:
            upstream = _upstream(server.port)
            for _ in range(3):
                assert (await _relay(upstream))[1] == 200
                await asyncio.sleep(0.05)  # the FIN arrives while the connection is idle
            assert server.accepted == 3
            assert upstream._open == 0
            await upstream.close()

    _run(test)


def test_the_pool_is_bounded_and_gives_every_place_back(monkeypatch):
    monkeypatch.setattr(upstream_module, "_POOL_SIZE", 5)
    in_flight = {"now": 0, "most": 0}

    async def slow(reader, writer, request):
        in_flight["now"] += 1
        in_flight["most"] = max(in_flight["most"], in_flight["now"])
        await asyncio.sleep(0.02)
        in_flight["now"] -= 1
        writer.write(OK)
        return True

    async def test():
        async with _Scripted(slow) as server:
            upstream = _upstream(server.port)
            results = await asyncio.gather(*(_relay(upstream) for _ in range(40)))
            assert all(r[1] == 200 for r in results)
            assert server.accepted == 5 and in_flight["most"] == 5
            assert upstream._open == 5 and len(upstream._idle) == 5
            await upstream.close()

    _run(test)


@pytest.mark.parametrize(
    ("answer", "failure", "reason"),
    [
        (b"", "reset", "closed the connection mid-answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "reset", "mid-answer"),
        (b"SMTP ready\r\n\r\n", "bad-answer", "not an HTTP answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100, "bad-answer", "over 64"),
    ],
)
def test_a_broken_answer_is_a_failure_saying_how(monkeypatch, answer, failure, reason):
    monkeypatch.setattr(upstream_module, "MAX_ANSWER_BYTES", 64)

    async def broken(reader, writer, request):
        writer.write(answer)
        return False

    async def test():
        async with _Scripted(broken) as server:
            upstream = _upstream(server.port)
            result = await _relay(upstream)
            assert result[:2] == ("failed", failure) and reason in result[2], result
            await asyncio.sleep(0.05)
            assert upstream._open == 0 and not upstream._idle
            await upstream.close()

    _run(test)


def test_a_slow_upstream_times_out_and_its_connection_is_dropped():
    async def stalls(reader, writer, request):
        await asyncio.sleep(1)
        writer.write(OK)
        return True

    async def test():
        async with _Scripted(stalls) as server:
            upstream = _upstream(server.port, timeout=0.2)
            started = asyncio.get_running_loop().time()
            result = await _relay(upstream)
            assert result == ("failed", "timeout", "no complete answer within 0.2 s")
            assert asyncio.get_running_loop().time() - started < 0.9
            await asyncio.sleep(0.05)
            assert upstream._open == 0 and not upstream._idle
            # Nothing out: the one timer that checks what is overdue is not running.
            assert not upstream._due and upstream._sweeper is None
            await upstream.close()

    _run(test)


def test_nobody_listening_is_unreachable():
    async def test():
        upstream = _upstream(free_port())
        result = await _relay(upstream)
        assert result[:2] == ("failed", "unreachable") and "cannot connect" in result[2]
        assert upstream._open == 0

    _run(test)


def test_the_judge_remembers_a_body_s_verdict_but_not_its_headers():
    judge = ResponseJudge(load_contract())
    limits = [("X-RateLimit-Limit", "100"), ("X-RateLimit-Reset", "60")]
    framed = [("Content-Type", "application/json"), *limits]
    drifted = b'{"customer_id": "c1", "archetype": 7}'
    first = judge.judge("analyzeCustomer", 200, framed, drifted)
    assert first[0]["path"] == "header:X-RateLimit-Remaining" and len(first) > 1
    body_problems = [dict(p) for p in first[1:]]
    for problem in first:
        problem["side"] = "response"  # the journal adds to what it is given
    again = judge.judge("analyzeCustomer", 200, [*framed, ("X-RateLimit-Remaining", "9")], drifted)
    assert again == body_problems
    # The same bytes framed otherwise are judged afresh.
    other = judge.judge("analyzeCustomer", 200, [("Content-Type", "text/plain")], drifted)
    assert other[-1]["path"] == "header:Content-Type"


@pytest.mark.parametrize(
    ("limit", "remaining", "problem"),
    [
        ("100", " 0 ", None),
        ("100", "-1", "header:X-RateLimit-Remaining: '-1': -1 is less than the minimum of 0"),
        ("0", "5", "header:X-RateLimit-Limit: '0': 0 is less than the minimum of 1"),
        ("100", "1_000", "header:X-RateLimit-Remaining: '1_000' is not an integer"),
        ("+5", "5", "header:X-RateLimit-Limit: '+5' is not an integer"),
        ("100", "٣", "header:X-RateLimit-Remaining: '٣' is not an integer"),
        ("100", "", "header:X-RateLimit-Remaining: '' is not an integer"),
        ("100", "2.5", "header:X-RateLimit-Remaining: '2.5' is not an integer"),
    ],
)
def test_documented_integer_headers_are_judged_as_http_integers(limit, remaining, problem):
    judge = ResponseJudge(load_contract())
    headers = [
        ("X-RateLimit-Limit", limit),
        ("X-RateLimit-Remaining", remaining),
        ("X-RateLimit-Reset", "1796207460"),
    ]
    found = [
        f"{p['path']}: {p['message']}"
        for p in judge.judge("analyzeCustomer", 200, headers, b"", head=True)
    ]
    assert found == ([] if problem is None else [problem])


def _outside_any_task(monkeypatch) -> Callable[[Awaitable[object]], asyncio.Future[object]]:
    """Runs a relay as the server runs a request: started from a protocol callback, outside
    any task (sandbox.eager). And asyncio's timeouts made as strict as
    Python 3.12's, where they need a task: the proxy's first connection failed there."""
    from sandbox.eager import run_eagerly

    real_wait_for = asyncio.wait_for

    def strict_wait_for(awaitable, timeout):
        if asyncio.current_task() is None:
            raise RuntimeError("Timeout should be used inside a task")
        return real_wait_for(awaitable, timeout)

    monkeypatch.setattr(asyncio, "wait_for", strict_wait_for)

    def start(relay: Awaitable[object]) -> asyncio.Future[object]:
        loop = asyncio.get_running_loop()
        result = loop.create_future()

        async def run() -> None:
            try:
                result.set_result(await relay)
            except Exception as exc:  # surfaced to the test, not swallowed by the runner
                result.set_exception(exc)

        def begin() -> None:
            assert asyncio.current_task() is None
            run_eagerly(run(), lambda: None)

        loop.call_soon(begin)
        return result

    return start


def test_a_request_outside_any_task_connects_waits_for_a_place_and_times_out(monkeypatch):
    monkeypatch.setattr(upstream_module, "_POOL_SIZE", 1)

    async def slow(reader, writer, request):
        await asyncio.sleep(0.1)
        writer.write(OK)
        return True

    async def test():
        start = _outside_any_task(monkeypatch)
        async with _Scripted(slow) as server:
            upstream = _upstream(server.port, timeout=1.0)
            first, second = start(_relay(upstream)), start(_relay(upstream))
            assert (await first)[:2] == ("answer", 200)  # connected outside any task
            assert (await second)[:2] == ("answer", 200)  # waited for the one place
            assert server.accepted == 1
            await upstream.close()
            hurried = _upstream(server.port, timeout=0.15)
            waits = [start(_relay(hurried)) for _ in range(3)]
            results = [await w for w in waits]
            assert results[0][:2] == ("answer", 200)
            # The third waits for the place past its deadline: timed out, not crashed.
            assert ("failed", "timeout", "no complete answer within 0.15 s") in results[1:]
            await asyncio.sleep(0.2)
            assert hurried._open <= 1 and not hurried._waiting
            await hurried.close()

    _run(test)
