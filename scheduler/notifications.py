"""A thread that LISTENs on a dedicated connection: it wakes at once on `stop()`, and it
reconnects after a failure, since notifications are lost while it is not listening.

Subclasses name their channels and write `serve(conn)`, which waits with `wait(conn, timeout)`
and returns only when stopping (or raises, to reconnect).
"""

from __future__ import annotations

import logging
import select
import socket
import threading

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from sqlalchemy.exc import SQLAlchemyError

from shared.db import connect_raw
from shared.settings import Settings

logger = logging.getLogger(__name__)


class ListeningThread(threading.Thread):
    channels: tuple[str, ...] = ()
    reconnect_seconds = 0.5
    lost_event = "listening_lost"  # the structured event logged when the connection fails
    recoverable = (psycopg2.Error, OSError, SQLAlchemyError)

    def __init__(self, settings: Settings, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.settings = settings
        self.stopping = threading.Event()
        self.connected = threading.Event()
        # Made in run(): a thread built only to call its methods (tests) holds no sockets.
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None

    def stop(self) -> None:
        """Stop at once, even while waiting for notifications."""
        self.stopping.set()
        try:
            if self._wake_w is not None:
                self._wake_w.send(b"x")
        except OSError:
            pass

    def serve(self, conn: Connection) -> None:
        """Work while listening on `conn`; return when stopping."""
        raise NotImplementedError

    def run(self) -> None:
        self._wake_r, self._wake_w = socket.socketpair()
        try:
            while not self.stopping.is_set():
                try:
                    self._connected_serve()
                except self.recoverable as exc:
                    if self.stopping.is_set():
                        break
                    logger.warning(
                        "%s lost its database connection: %s; reconnecting",
                        self.name,
                        exc,
                        extra={"event": self.lost_event},
                    )
                    self.stopping.wait(self.reconnect_seconds)
                except Exception:  # never stop listening: the next connection starts afresh
                    logger.exception("%s failed; restarting it", self.name)
                    self.stopping.wait(self.reconnect_seconds)
        finally:
            self._wake_r.close()
            self._wake_w.close()

    def _connected_serve(self) -> None:
        conn = connect_raw(self.settings.database_url, application_name=self.name)
        try:
            with conn.cursor() as cur:
                for channel in self.channels:
                    cur.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self.connected.set()
            self.serve(conn)
        finally:
            self.connected.clear()
            conn.close()

    def wait(self, conn: Connection, timeout: float) -> list[str] | None:
        """The payloads that arrived within `timeout` seconds (maybe none), or None when
        stopping."""
        assert self._wake_r is not None  # made by run(), the only caller of serve()
        ready, _, _ = select.select([conn, self._wake_r], [], [], max(0.0, timeout))
        if self.stopping.is_set():
            return None
        if not ready:
            return []
        conn.poll()
        payloads = [note.payload for note in conn.notifies]
        conn.notifies.clear()
        return payloads
