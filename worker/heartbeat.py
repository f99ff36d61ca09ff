"""The worker process's heartbeat in `worker_nodes`, which orphan rescue reads."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from shared import nodes

logger = logging.getLogger(__name__)


def new_worker_id(node: str) -> str:
    """`node/pid/boot`: unique per process lifetime even when NODE_NAME and pid repeat."""
    return f"{node}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


class Heartbeat:
    """Upserts this process's row every `interval` seconds; deletes it on a clean stop."""

    def __init__(
        self, engine: Callable[[], Engine], worker_id: str, node: str, interval: float
    ) -> None:
        self._engine = engine
        self.worker_id = worker_id
        self._node = node
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="srjobs-heartbeat", daemon=True)

    def beat(self) -> bool:
        """One heartbeat; False (logged) when the database does not answer."""
        try:
            with self._engine().begin() as conn:
                nodes.beat_worker(conn, self.worker_id, self._node)
            return True
        except SQLAlchemyError as exc:
            logger.warning("worker heartbeat failed: %s", exc)
            return False

    def start(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.beat()

    def stop(self) -> None:
        """Stop beating and remove the row; runs it left `running` count as orphans."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        try:
            with self._engine().begin() as conn:
                nodes.forget_worker(conn, self.worker_id)
        except SQLAlchemyError as exc:
            logger.warning("could not remove worker row %s: %s", self.worker_id, exc)
