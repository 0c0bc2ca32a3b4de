"""Answers to read operations, kept while nothing they depend on changes.

A read operation's answer is a pure function of the operation, the tenant, the request
body's bytes, the path parameters, the test clock's date and how far it has moved past
its anchor, and the tenant's ingested data (the store's revision for it); seed and
settings are fixed for the process. That tuple is the key, and a hit skips building the
customer's history, the model and the JSON encoding. Faults and latency are decided
before and applied after, so they are never cached. Only a store that knows its
revisions cheaply (in memory) is cached over: with a shared store, another process's
ingest would go unseen. No Flask here.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from sandbox.clock import Clock
from sandbox.store.base import Store

DEFAULT_SIZE = 4096  # answers are ~1-3 KB: a few MB at most


class AnswerCache:
    def __init__(self, store: Store, clock: Clock, size: int = DEFAULT_SIZE) -> None:
        self._store = store
        self._clock = clock
        self.size = size
        self._answers: dict[Hashable, bytes] = {}

    def answer(
        self,
        operation_id: str,
        tenant: str,
        raw_body: bytes,
        path_params: dict[str, Any],
        compute: Callable[[], bytes],
    ) -> bytes:
        revision = self._store.revision(tenant)
        if revision is None:
            return compute()
        day, age = self._clock.day_and_age()
        params = tuple(sorted(path_params.items())) if path_params else ()
        key = (operation_id, tenant, raw_body, params, day, age, revision)
        found = self._answers.get(key)
        if found is None:
            found = compute()  # raises for errors (unknown customer...): never cached
            if len(self._answers) >= self.size:
                self._evict_oldest()
            self._answers[key] = found
        return found

    def _evict_oldest(self) -> None:
        try:
            del self._answers[next(iter(self._answers))]
        except (KeyError, StopIteration, RuntimeError):
            pass  # another thread evicted it first (werkzeug's threaded server)
