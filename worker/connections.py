"""One autocommit psycopg2 connection per worker thread for the run-record hot path.

A pool checkout costs more than the statement it serves at thousands of messages a second;
worker threads live as long as the process, so each keeps its own connection. `on_connect`
runs on each new connection (the worker prepares its per-message statement there), so a
replaced connection is prepared again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import psycopg2

from shared.db import connect_raw
from shared.settings import Settings

T = TypeVar("T")


class ThreadConnections:
    """Lazily opens a connection per thread; `run(fn)` retries once on a dropped connection."""

    def __init__(
        self,
        settings: Settings,
        on_connect: Callable[[psycopg2.extensions.cursor], None] | None = None,
    ) -> None:
        self._settings = settings
        self._on_connect = on_connect
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[psycopg2.extensions.connection] = []

    def _connection(self) -> psycopg2.extensions.connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = connect_raw(
                self._settings.database_url,
                application_name=f"srjobs-runs:{self._settings.node_name}",
            )
            if self._on_connect is not None:
                try:
                    with conn.cursor() as cursor:
                        self._on_connect(cursor)
                except BaseException:
                    conn.close()
                    raise
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def run(self, fn: Callable[[psycopg2.extensions.cursor], T]) -> T:
        """`fn(cursor)` on this thread's connection; a connection the server dropped is
        replaced and the call retried once."""
        for retry in (False, True):
            conn = self._connection()
            try:
                with conn.cursor() as cursor:
                    return fn(cursor)
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                conn.close()
                self._local.conn = None
                if retry:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
