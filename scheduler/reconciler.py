"""Full reconciles on their own thread, so the listener keeps applying single changes while
one runs (a full reconcile of 100,000 schedules takes a while; a change must not wait)."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Reconciler(threading.Thread):
    """Calls `reconcile()` once per burst of `request()`s (requests made while one runs
    ask for one more, after it)."""

    def __init__(self, reconcile: Callable[[], None]) -> None:
        super().__init__(name="srjobs-reconciler", daemon=True)
        self._reconcile = reconcile
        self._wanted = threading.Event()
        self._stopping = threading.Event()

    def request(self) -> None:
        self._wanted.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wanted.set()

    def run(self) -> None:
        while True:
            self._wanted.wait()
            if self._stopping.is_set():
                return
            self._wanted.clear()
            self._reconcile()  # the caller's function handles its own errors
