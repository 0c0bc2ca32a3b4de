"""Run a request's coroutine at once, inside the protocol callback that completed the
request, and carry it on without a task if it has to wait.

Most of the sandbox's requests never wait (the app runs inline; only a held answer, the
proxy's upstream or a Redis reply made ahead does), and a task per request cost 12-20 %
of the server's throughput on bench/floor_app.py: creating it, the loop turn its first
step takes, and the one its done-callback takes. Every proxied exchange waits, so the
proxy paid all of it once per exchange. A :class:`Driven` coroutine is resumed straight
from the callback of the future it waits on, in a context of its own (as a task's), so
context variables never leak from one request to the next.

A request runs outside any task: ``asyncio.current_task()`` is None throughout, so
``asyncio.timeout()`` and (from Python 3.12) ``asyncio.wait_for()`` may not be used on
the request path; time a wait with a loop timer (``sandbox.proxy.upstream._within``).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any


def run_eagerly(coroutine: Coroutine[Any, Any, Any], on_end: Callable[[], None]) -> Driven | None:
    """None: it ended. Otherwise it waits, and the :class:`Driven` carries it on and calls
    ``on_end`` once it ended. Ending with ConnectionError (the client went away, a network
    fault dropped it) or cancelled counts as ending; any other error is raised here on the
    first step, and to the loop's exception handler on a later one (as a task's is
    logged)."""
    driven = Driven(coroutine, on_end)
    try:
        waiting_on = driven.context.run(coroutine.send, None)
    except (StopIteration, ConnectionError, asyncio.CancelledError):
        return None
    driven.wait_on(waiting_on)
    return driven


class Driven:
    """A waiting request's coroutine: what a task would do for it, and no more."""

    __slots__ = ("coroutine", "context", "on_end", "waiting_on")

    def __init__(self, coroutine: Coroutine[Any, Any, Any], on_end: Callable[[], None]) -> None:
        self.coroutine = coroutine
        self.context = contextvars.copy_context()
        self.on_end = on_end
        self.waiting_on: asyncio.Future[Any] | None = None

    def wait_on(self, waiting_on: Any) -> None:
        # Every later step runs as a callback in the request's own context (not entered
        # again by the step itself: a context cannot be entered twice).
        loop = asyncio.get_running_loop()
        if waiting_on is None:  # a bare yield (asyncio.sleep(0)): on at the loop's next turn
            loop.call_soon(self.resume, None, context=self.context)
            return
        if getattr(waiting_on, "_asyncio_future_blocking", None) is None:
            # What a task refuses too: only futures may be awaited on asyncio's loop.
            error = RuntimeError(f"a request's coroutine yielded {waiting_on!r}, not a future")
            loop.call_soon(self._step, self.coroutine.throw, error, context=self.context)
            return
        waiting_on._asyncio_future_blocking = False
        self.waiting_on = waiting_on
        waiting_on.add_done_callback(self.resume, context=self.context)

    def resume(self, _future: Any) -> None:
        self.waiting_on = None
        # The future's outcome (a result, its exception, or its cancellation) is read by
        # the coroutine itself: the await it stopped at calls result().
        self._step(self.coroutine.send, None)

    def _step(self, step: Callable[[Any], Any], value: Any) -> None:
        try:
            waiting_on = step(value)
        except (StopIteration, ConnectionError, asyncio.CancelledError):
            self.on_end()
            return
        except BaseException:
            self.on_end()
            raise
        self.wait_on(waiting_on)

    def cancel(self) -> None:
        """As ``Task.cancel``: the future it waits on is cancelled, so the coroutine gets
        CancelledError where it waits (the server stopping past its grace)."""
        if self.waiting_on is not None:
            self.waiting_on.cancel()
