"""Run a request's coroutine at once, inside the protocol callback that completed the
request, and hand it to a task only if it has to wait.

Most of the sandbox's requests never wait (the app runs inline; only a held answer or
the proxy's upstream does), and a task per request cost 12-20 % of the server's
throughput on bench/floor_app.py: creating it, and the loop iteration it runs in. Python
3.12's eager task factory does the same for a whole loop; the sandbox supports 3.11.

Until its first wait the coroutine runs outside any task: ``asyncio.current_task()`` is
None there, so ``asyncio.timeout()`` (which needs a task) may only come after a first
wait. It runs in a context of its own, as in a task, so context variables never leak
from one request to the next.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine, Generator
from typing import Any


def run_eagerly(coroutine: Coroutine[Any, Any, Any], on_end: Callable[[], None]) -> bool:
    """True: it ended. False: it waits, and a task calls ``on_end`` once it ended. Ending
    with ConnectionError (the client went away, a network fault dropped it) or cancelled
    counts as ending."""
    context = contextvars.copy_context()
    try:
        waiting_on = context.run(coroutine.send, None)
    except StopIteration:
        return True
    except (ConnectionError, asyncio.CancelledError):
        return True
    loop = asyncio.get_running_loop()
    task = loop.create_task(_carry_on(coroutine, waiting_on), context=context)
    task.add_done_callback(lambda _: on_end())
    return False


class _Resumed:
    """Carries on a coroutine that began outside any task and now waits on ``waiting_on``."""

    __slots__ = ("coroutine", "waiting_on")

    def __init__(self, coroutine: Coroutine[Any, Any, Any], waiting_on: Any) -> None:
        self.coroutine = coroutine
        self.waiting_on = waiting_on

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine, value = self.coroutine, self.waiting_on
        while True:
            try:
                sent = yield value  # the future goes up to the task, as if awaited there
            except BaseException as exc:  # the task's cancellation: passed on
                try:
                    value = coroutine.throw(exc)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                value = coroutine.send(sent)
            except StopIteration as stop:
                return stop.value


async def _carry_on(coroutine: Coroutine[Any, Any, Any], waiting_on: Any) -> None:
    try:
        await _Resumed(coroutine, waiting_on)
    except (ConnectionError, asyncio.CancelledError):
        pass  # the client went away, a network fault dropped it, or the server stopped
