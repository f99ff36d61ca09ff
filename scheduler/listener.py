"""LISTEN for schedule changes on a dedicated connection; reconnect and resync on failure.

The table's trigger sends `{"name": ..., "at": <epoch seconds of the change>}` on the
channel, so the leader can tell how long a change took to be in force.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
import time
from collections.abc import Callable

import psycopg2

from shared.db import connect_raw
from shared.settings import Settings

logger = logging.getLogger(__name__)

CHANNEL = "srjobs_schedules"
RECONNECT_SECONDS = 0.2

# name -> when it changed (epoch seconds, None when the payload did not say); None: resync all
Changes = dict[str, float | None]


def parse_payload(payload: str) -> tuple[str, float | None]:
    """A notification's (job name, change time); a bare payload is just a name."""
    try:
        data = json.loads(payload)
    except ValueError:
        return payload, None
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        at = data.get("at")
        return data["name"], float(at) if isinstance(at, int | float) else None
    return payload, None


class ScheduleListener(threading.Thread):
    """Calls `on_change(changes)` per batch of notifications, and `on_change(None)` after each
    (re)connect (notifications may have been lost) and every `reconcile_seconds`."""

    def __init__(self, settings: Settings, on_change: Callable[[Changes | None], None]) -> None:
        super().__init__(name="srjobs-listener", daemon=True)
        self.settings = settings
        self.on_change = on_change
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()

    def stop(self) -> None:
        """Stop at once, even while waiting for notifications."""
        self.stopping.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    self._listen()
                except (psycopg2.Error, OSError) as exc:
                    self.connected.clear()
                    if self.stopping.is_set():
                        break
                    logger.warning(
                        "schedule listener lost its connection: %s; reconnecting",
                        exc,
                        extra={"event": "listener_lost"},
                    )
                    self.stopping.wait(RECONNECT_SECONDS)
        finally:
            self._wake_r.close()
            self._wake_w.close()

    def _listen(self) -> None:
        conn = connect_raw(self.settings.database_url, application_name="srjobs-listener")
        try:
            with conn.cursor() as cur:
                cur.execute("LISTEN srjobs_schedules")  # = CHANNEL
            self.connected.set()
            logger.info("listening for schedule changes", extra={"event": "listener_connected"})
            self.on_change(None)  # changes made while not listening are only in the table
            next_full = time.monotonic() + self.settings.reconcile_seconds
            while not self.stopping.is_set():
                timeout = max(0.0, next_full - time.monotonic())
                ready, _, _ = select.select([conn, self._wake_r], [], [], timeout)
                if self.stopping.is_set():
                    return
                if not ready:
                    self.on_change(None)
                    next_full = time.monotonic() + self.settings.reconcile_seconds
                    continue
                conn.poll()
                changes: Changes = {}
                for note in conn.notifies:
                    name, at = parse_payload(note.payload)
                    changes[name] = at if name not in changes else min_time(changes[name], at)
                conn.notifies.clear()
                if changes:
                    self.on_change(changes)
        finally:
            self.connected.clear()
            conn.close()


def min_time(a: float | None, b: float | None) -> float | None:
    """The earlier of two optional times (the first change of a batch sets its latency)."""
    if a is None or b is None:
        return a if b is None else b
    return min(a, b)
