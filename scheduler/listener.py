"""LISTEN for schedule changes on a dedicated connection; reconnect and resync on failure."""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable

import psycopg2

from shared.db import connect_raw
from shared.settings import Settings

logger = logging.getLogger(__name__)

CHANNEL = "srjobs_schedules"


class ScheduleListener(threading.Thread):
    """Calls `on_change(names)` per batch of notifications and `on_change(None)` after each
    (re)connect, when notifications may have been lost and a full reconcile is due."""

    def __init__(
        self,
        settings: Settings,
        on_change: Callable[[set[str] | None], None],
        stop: threading.Event,
    ) -> None:
        super().__init__(name="srjobs-listener", daemon=True)
        self.settings = settings
        self.on_change = on_change
        self.stop = stop
        self.connected = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._listen()
            except (psycopg2.Error, OSError) as exc:
                self.connected.clear()
                logger.warning("schedule listener lost its connection: %s; reconnecting", exc)
                self.stop.wait(0.2)

    def _listen(self) -> None:
        conn = connect_raw(self.settings.database_url, application_name="srjobs-listener")
        try:
            with conn.cursor() as cur:
                cur.execute(f"LISTEN {CHANNEL}")
            self.connected.set()
            self.on_change(None)
            while not self.stop.is_set():
                ready, _, _ = select.select([conn], [], [], 0.5)
                if not ready:
                    continue
                conn.poll()
                names = {n.payload for n in conn.notifies}
                conn.notifies.clear()
                if names:
                    self.on_change(names)
        finally:
            self.connected.clear()
            conn.close()
