"""Per-process resources of a worker, opened at process boot (never at import)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import Engine

from shared.db import make_engine
from shared.settings import Settings


@dataclass
class Resources:
    settings: Settings
    engine: Engine


_lock = threading.Lock()
_current: Resources | None = None


def open_resources(settings: Settings) -> Resources:
    """Open this process's engine once; later calls return the same resources."""
    global _current
    with _lock:
        if _current is None:
            _current = Resources(settings, make_engine(settings, application_name="srjobs-worker"))
        return _current


def current() -> Resources:
    """The open resources; raises when the process has not booted."""
    if _current is None:
        raise RuntimeError("worker resources are not open: the broker was not set up by srjobs")
    return _current


def close_resources() -> None:
    """Dispose of the engine (process shutdown, tests)."""
    global _current
    with _lock:
        if _current is not None:
            _current.engine.dispose()
            _current = None
