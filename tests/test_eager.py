"""sandbox.eager: a request's coroutine run at once, and carried on without a task when
it waits, with what a task would give it (its own context, results and errors of what it
awaits, cancellation) and the end reported once."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from sandbox.eager import run_eagerly

_SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")


def _loop_run(scenario) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 5))


def _from_a_callback(coroutine, ended: list[str]):
    """Started as the server starts a request: from a protocol callback, outside any task."""
    loop = asyncio.get_running_loop()
    started = loop.create_future()

    def begin() -> None:
        started.set_result(run_eagerly(coroutine, lambda: ended.append("ended")))

    loop.call_soon(begin)
    return started


def test_a_coroutine_that_never_waits_ends_in_the_call():
    ended: list[str] = []
    steps: list[str] = []

    async def handler() -> None:
        steps.append("ran")

    async def scenario() -> None:
        assert await _from_a_callback(handler(), ended) is None
        assert steps == ["ran"] and ended == []  # the caller knows: no on_end needed

    _loop_run(scenario)


def test_waits_get_results_errors_and_bare_yields_outside_any_task_then_end_once():
    ended: list[str] = []
    steps: list[object] = []

    async def handler(answer: asyncio.Future[int], broken: asyncio.Future[int]) -> None:
        steps.append(asyncio.current_task())
        steps.append(await answer)
        try:
            await broken
        except LookupError as exc:
            steps.append(str(exc))
        await asyncio.sleep(0)  # a bare yield
        await asyncio.sleep(0.01)
        steps.append("done")

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        answer, broken = loop.create_future(), loop.create_future()
        driven = await _from_a_callback(handler(answer, broken), ended)
        assert driven is not None and ended == []
        answer.set_result(7)
        broken.set_exception(LookupError("no such thing"))
        for _ in range(50):
            if ended:
                break
            await asyncio.sleep(0.005)
        assert steps == [None, 7, "no such thing", "done"]
        assert ended == ["ended"]

    _loop_run(scenario)


@pytest.mark.parametrize("ending", [ConnectionResetError, asyncio.CancelledError])
def test_cancelled_or_gone_counts_as_ended(ending):
    ended: list[str] = []
    cleaned: list[str] = []

    async def handler(gate: asyncio.Future[None]) -> None:
        try:
            await gate
            raise ending()
        finally:
            cleaned.append("finally")

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        gate = loop.create_future()
        driven = await _from_a_callback(handler(gate), ended)
        if ending is asyncio.CancelledError:
            driven.cancel()  # the server stopping: the future it waits on is cancelled
        else:
            gate.set_result(None)
        await asyncio.sleep(0.01)
        assert cleaned == ["finally"] and ended == ["ended"]

    _loop_run(scenario)


def test_each_request_has_its_own_context():
    ended: list[str] = []
    seen: list[str] = []

    async def handler(name: str, gate: asyncio.Future[None]) -> None:
        _SEEN.set(name)
        await gate
        seen.append(f"{name}:{_SEEN.get()}")

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        gate = loop.create_future()
        await _from_a_callback(handler("a", gate), ended)
        await _from_a_callback(handler("b", gate), ended)
        assert _SEEN.get() == "unset"  # nothing leaked into the caller's
        gate.set_result(None)
        await asyncio.sleep(0.01)
        assert sorted(seen) == ["a:a", "b:b"] and ended == ["ended", "ended"]

    _loop_run(scenario)


def test_an_error_after_a_wait_goes_to_the_loop_and_still_ends():
    ended: list[str] = []
    reported: list[str] = []

    async def handler(gate: asyncio.Future[None]) -> None:
        await gate
        raise ValueError("a bug in the handler")

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _, context: reported.append(str(context["exception"])))
        gate = loop.create_future()
        await _from_a_callback(handler(gate), ended)
        gate.set_result(None)
        await asyncio.sleep(0.01)
        assert reported == ["a bug in the handler"] and ended == ["ended"]

    _loop_run(scenario)


def test_yielding_what_is_not_a_future_is_an_error_in_the_coroutine():
    ended: list[str] = []
    seen: list[str] = []

    class Odd:
        def __await__(self):
            yield "not a future"

    async def handler() -> None:
        _SEEN.set("mine")
        try:
            await Odd()
        except RuntimeError as exc:
            seen.append(f"{_SEEN.get()}: {exc}")

    async def scenario() -> None:
        await _from_a_callback(handler(), ended)
        await asyncio.sleep(0.01)
        assert seen == ["mine: a request's coroutine yielded 'not a future', not a future"]
        assert ended == ["ended"]

    _loop_run(scenario)
