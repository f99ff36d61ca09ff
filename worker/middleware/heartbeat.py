"""Middleware: the worker process's heartbeat in `worker_nodes`, which orphan rescue reads."""

from __future__ import annotations

import logging
import threading

from dramatiq import Broker, Worker
from sqlalchemy.exc import SQLAlchemyError

from shared import nodes
from worker.middleware.context import ProcessState, StateMiddleware

logger = logging.getLogger(__name__)


class Heartbeat(StateMiddleware):
    """Upserts this process's row every SRJOBS_WORKER_HEARTBEAT_SECONDS while its worker
    runs; deletes it on a clean stop (runs it left `running` then count as orphans)."""

    def __init__(self, state: ProcessState) -> None:
        super().__init__(state)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._worker_id = state.worker_id

    def beat(self) -> bool:
        """One heartbeat; False (logged) when the database does not answer."""
        try:
            with self.state.engine().begin() as conn:
                nodes.beat_worker(conn, self._worker_id, self.state.settings.node_name)
            return True
        except SQLAlchemyError as exc:
            logger.warning("worker heartbeat failed: %s", exc)
            return False

    def _loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.state.settings.worker_heartbeat_seconds):
            self.beat()

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self._worker_id = self.state.worker_id
        self._stop = threading.Event()
        self.beat()
        self._thread = threading.Thread(
            target=self._loop, args=(self._stop,), name="srjobs-heartbeat", daemon=True
        )
        self._thread.start()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self._stop.set()
        if self._thread is None:
            return
        if self._thread.is_alive():
            self._thread.join(5)
        self._thread = None
        try:
            with self.state.engine().begin() as conn:
                nodes.forget_worker(conn, self._worker_id)
        except SQLAlchemyError as exc:
            logger.warning("could not remove worker row %s: %s", self._worker_id, exc)
