"""Serve the app on gunicorn (threaded workers); see ARCHITECTURE.md for why gunicorn."""

from __future__ import annotations

import gc
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from sandbox.config import Settings


class _Gunicorn(BaseApplication):
    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self._options.items():
            if name in self.cfg.settings:  # newer gunicorns know more settings
                self.cfg.set(name, value)

    def load(self) -> Flask:
        return self._app


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "bind": f"{settings.host}:{settings.port}",
        # One process by default: the in-memory store lives in it. More need a shared
        # (Redis) store. Threads serve concurrent clients and keep connections alive,
        # which sync workers would not.
        "workers": settings.workers,
        "worker_class": "gthread",
        "threads": settings.threads,
        "keepalive": 5,
        "graceful_timeout": 5,
        "timeout": 0,
        "loglevel": settings.log_level,
        "errorlog": "-",
        "accesslog": None,
        "proc_name": "quimbi-sandbox",
        # gunicorn's runtime control socket sits at one fixed path per user, so two
        # sandboxes on one machine would fight over it; nothing here needs it.
        "control_socket_disable": True,
    }


def _quiet_garbage_collector() -> None:
    """Fewer, cheaper collections: the app's long-lived objects (contract, validators,
    fixtures) are built before the fork and frozen out of every future collection, and
    the youngest generation is collected less often. Full collections over everything
    built at start-up were the sandbox's p99 spikes."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def serve(app: Flask, settings: Settings) -> None:
    """Run until SIGINT/SIGTERM; gunicorn's arbiter stops the worker gracefully."""
    _quiet_garbage_collector()
    _Gunicorn(app, gunicorn_options(settings)).run()
