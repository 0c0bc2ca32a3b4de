"""The Redis store's journal writes, off the request's path: a thread of this process
appends the entries in batches (one round trip for all that queued while the last one
was written), so a request waits for none of them. Counter bumps whose new value nobody
waits for (a success's coverage counts) ride along, summed per counter.

Bounded: at most the journal's own size waits (older ones would be trimmed from the
journal anyway). Not lost: this process's reads of the journal, and resets, wait for
what is queued first; :func:`flush_all` writes what is left before the process exits
(atexit, and the server's workers, which leave through ``os._exit``). Another process
sees an entry once its batch is written, normally well within a millisecond of the
answer. An outage drops what it cannot write, as the synchronous write did. No Flask.
The store's reads of counters wait too (``flush``).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable, Iterable

from sandbox.errors import StoreUnavailable

log = logging.getLogger("sandbox.store")

FLUSH_TIMEOUT_SECONDS = 5.0
# After the first entry of a batch, how long the writer lets more join it: under load one
# round trip then carries several requests' entries (less CPU for the thread, which
# shares the GIL with the server); another process sees an entry at most this much later.
LINGER_SECONDS = 0.002
# A writer with nothing to write this long ends its thread (the next entry starts one):
# no thread, and no connection held by it, outlives a store that is no longer used.
IDLE_EXIT_SECONDS = 2.0

_writers: weakref.WeakSet[JournalWriter] = weakref.WeakSet()


def flush_all() -> None:
    """Write every queued entry of every writer in this process (before it exits)."""
    for writer in list(_writers):
        writer.flush()


atexit.register(flush_all)


class JournalWriter:
    def __init__(self, write: Callable[[list[str], int, dict[str, int]], None]) -> None:
        self._write = write  # (encoded entries, the journal's size, bumps) -> None
        self._pid: int | None = None
        _writers.add(self)

    def _start(self) -> None:
        # Per process: a forked worker inherits neither the thread nor a usable lock.
        self._pid = os.getpid()
        self._pending: deque[str] = deque()
        self._bumps: Counter[str] = Counter()  # as many keys as coverage has: bounded
        self._limit = 1
        self._busy = False
        self._changed = threading.Condition()
        self._running = False

    def _wake(self) -> None:
        """Under the lock: something is queued; start the thread if it has ended."""
        if not self._running:
            self._running = True
            threading.Thread(target=self._run, name="journal-writer", daemon=True).start()
        self._changed.notify_all()

    def append(self, doc: str, limit: int) -> None:
        if self._pid != os.getpid():
            self._start()
        with self._changed:
            if self._pending.maxlen != limit:
                self._pending = deque(self._pending, maxlen=limit)
            self._limit = limit
            self._pending.append(doc)
            self._wake()

    def bump(self, keys: Iterable[str]) -> None:
        if self._pid != os.getpid():
            self._start()
        with self._changed:
            self._bumps.update(keys)
            self._wake()

    def flush(self, timeout: float = FLUSH_TIMEOUT_SECONDS) -> None:
        """Return once every entry appended so far is written (or failed to be)."""
        if self._pid != os.getpid():
            return  # nothing appended in this process
        with self._changed:
            self._changed.wait_for(
                lambda: not self._pending and not self._bumps and not self._busy, timeout
            )

    def _run(self) -> None:
        while True:
            with self._changed:
                queued = lambda: bool(self._pending or self._bumps)  # noqa: E731
                if not self._changed.wait_for(queued, IDLE_EXIT_SECONDS):
                    self._running = False
                    return
            time.sleep(LINGER_SECONDS)
            with self._changed:
                batch, limit, bumps = list(self._pending), self._limit, dict(self._bumps)
                self._pending.clear()
                self._bumps.clear()
                self._busy = True
            try:
                self._write(batch, limit, bumps)
            except StoreUnavailable:
                pass  # the outage is logged once by the store, not per entry
            except Exception:
                log.exception(
                    "journal: %d entries, %d counters not written", len(batch), len(bumps)
                )
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()
