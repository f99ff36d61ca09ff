"""LISTEN for schedule changes on a dedicated connection; reconnect and resync on failure.

The table's trigger sends `{"name": ..., "at": <epoch seconds of the change>}` on the
channel, so the leader can tell how long a change took to be in force.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from psycopg2.extensions import connection as Connection

from scheduler.notifications import ListeningThread
from shared.settings import Settings

logger = logging.getLogger(__name__)

CHANNEL = "srjobs_schedules"

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


class ScheduleListener(ListeningThread):
    """Calls `on_change(changes)` per batch of notifications, and `on_change(None)` after each
    (re)connect (notifications may have been lost) and every `reconcile_seconds`."""

    channels = (CHANNEL,)
    reconnect_seconds = 0.2
    lost_event = "listener_lost"

    def __init__(self, settings: Settings, on_change: Callable[[Changes | None], None]) -> None:
        super().__init__(settings, name="srjobs-listener")
        self.on_change = on_change

    def serve(self, conn: Connection) -> None:
        logger.info("listening for schedule changes", extra={"event": "listener_connected"})
        self.on_change(None)  # changes made while not listening are only in the table
        next_full = time.monotonic() + self.settings.reconcile_seconds
        while (payloads := self.wait(conn, next_full - time.monotonic())) is not None:
            if time.monotonic() >= next_full:
                # The safety net (it runs on the reconciler's thread); whatever just arrived is
                # still applied as a change below, so it is timed and logged like any other.
                self.on_change(None)
                next_full = time.monotonic() + self.settings.reconcile_seconds
            changes: Changes = {}
            for payload in payloads:
                name, at = parse_payload(payload)
                changes[name] = at if name not in changes else min_time(changes[name], at)
            if changes:
                self.on_change(changes)


def min_time(a: float | None, b: float | None) -> float | None:
    """The earlier of two optional times (the first change of a batch sets its latency)."""
    if a is None or b is None:
        return a if b is None else b
    return min(a, b)
