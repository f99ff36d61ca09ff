"""Per-process resources of a worker, opened at process boot (never at import)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine

from shared.db import KEEPALIVES, make_engine, sqlalchemy_url
from shared.settings import Settings


@dataclass
class Resources:
    settings: Settings
    engine: Engine  # for jobs: transactions, pre-ping
    records: Engine  # for run records: autocommit, one round trip per transition


def make_records_engine(settings: Settings, pool_size: int = 2) -> Engine:
    """Autocommit, no pre-ping: a transition is one statement and one round trip.

    Serves the flusher, the heartbeat and failures; the per-message `running` transition
    uses each worker thread's own connection (worker/connections.py).

    A connection the server dropped fails the statement that finds it (nothing here retries
    it); SQLAlchemy then invalidates the pool, so the next checkout connects afresh.
    """
    return create_engine(
        sqlalchemy_url(settings.database_url),
        isolation_level="AUTOCOMMIT",
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args={**KEEPALIVES, "application_name": f"srjobs-runs:{settings.node_name}"},
    )


_lock = threading.Lock()
_current: Resources | None = None


def open_resources(settings: Settings) -> Resources:
    """Open this process's engines once; later calls return the same resources."""
    global _current
    if _current is not None:
        return _current
    with _lock:
        if _current is None:
            _current = Resources(
                settings,
                make_engine(settings, application_name="srjobs-worker"),
                make_records_engine(settings),
            )
        return _current


def current() -> Resources:
    """The open resources; raises when the process has not booted."""
    if _current is None:
        raise RuntimeError("worker resources are not open: the broker was not set up by srjobs")
    return _current


def close_resources() -> None:
    """Dispose of the engines (process shutdown, tests)."""
    global _current
    with _lock:
        if _current is not None:
            _current.engine.dispose()
            _current.records.dispose()
            _current = None
