"""Batched `succeeded` transitions: one UPDATE for many runs, written by a background thread.

A run stays `running` in the database for at most one flush interval after its job returned
(plus the time a database outage lasts). Failures and discards are never batched: they are
written at once, with their error. At shutdown everything still buffered is written.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from shared import runs

logger = logging.getLogger(__name__)

# (run id, attempt, seconds the job ran, and the start: epoch seconds, node, worker)
Done = runs.Success
MAX_BATCH = 1000


class SuccessBuffer:
    """Collects finished runs and flushes them every `interval` seconds, or sooner when full."""

    def __init__(self, engine: Callable[[], Engine], interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self._lock = threading.Lock()
        self._items: list[Done] = []
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the flusher thread (idempotent; none when each run is written at once)."""
        if self._thread is None and self._interval > 0:
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._loop, name="srjobs-run-flusher", daemon=True
            )
            self._thread.start()

    def add(self, item: Done) -> None:
        """Buffer one succeeded run; with no interval (0) it is written at once."""
        if self._interval <= 0 or self._thread is None:
            self._write([item])
            return
        with self._lock:
            self._items.append(item)
            full = len(self._items) >= MAX_BATCH
        if full:
            self._wake.set()

    def pending(self) -> int:
        """How many runs wait to be written."""
        with self._lock:
            return len(self._items)

    def flush(self) -> int:
        """Write what is buffered; on a database error keep it for the next try."""
        with self._lock:
            batch, self._items = self._items[:MAX_BATCH], self._items[MAX_BATCH:]
        if not batch:
            return 0
        try:
            self._write(batch)
        except SQLAlchemyError as exc:
            with self._lock:
                self._items[:0] = batch
            logger.warning("could not record %d succeeded run(s), will retry: %s", len(batch), exc)
            return 0
        return len(batch)

    def _write(self, batch: list[Done]) -> None:
        with self._engine().begin() as conn:
            runs.mark_succeeded_many(conn, batch)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            while self.flush() >= MAX_BATCH:
                pass

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and write everything left (bounded by `timeout` on errors)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        pause = threading.Event()
        for _ in range(max(1, int(timeout / 0.5))):
            while self.flush():
                pass
            if not self.pending():
                return
            pause.wait(0.5)  # the database is unreachable: try again shortly
        logger.error("%d succeeded run(s) could not be recorded at shutdown", self.pending())
