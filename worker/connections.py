"""One autocommit psycopg2 connection per worker thread for the run-record hot path.

A pool checkout costs more than the statement it serves at thousands of messages a second;
worker threads live as long as the process, so each keeps its own connection. `on_connect`
runs on each new connection (the worker prepares its per-message statement there), so a
replaced connection is prepared again. The thread keeps one cursor too: a psycopg2 cursor is
reusable, and making one per message costs more than the statement's parameters.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg2

from shared.db import connect_raw
from shared.settings import Settings

T = TypeVar("T")


class ThreadConnections:
    """Lazily opens a connection per thread, with one cursor kept for it; `run(fn, *args)`
    retries once on a dropped connection."""

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

    def _cursor(self) -> psycopg2.extensions.cursor:
        cursor = getattr(self._local, "cursor", None)
        if cursor is not None and not cursor.closed:
            return cursor
        conn = connect_raw(
            self._settings.database_url,
            application_name=f"srjobs-runs:{self._settings.node_name}",
        )
        try:
            cursor = conn.cursor()
            if self._on_connect is not None:
                self._on_connect(cursor)
        except BaseException:
            conn.close()
            raise
        self._local.cursor = cursor
        with self._lock:
            self._all.append(conn)
        return cursor

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(cursor, *args)` on this thread's connection; a connection the server dropped is
        replaced and the call retried once."""
        for retry in (False, True):
            cursor = self._cursor()
            try:
                return fn(cursor, *args)
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                cursor.connection.close()  # closes the cursor too: the next call reconnects
                self._local.cursor = None
                if retry:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
