"""The leader lock: a dedicated Postgres session holding one session-level advisory lock.

The session is the lease: `idle_session_timeout` ends it server-side when the process
freezes, which releases the lock. Every fire records its run, and every write to
APScheduler's job store goes, through this same session (the fence): a leader whose session
is gone can neither fire nor touch the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from shared import runs
from shared.db import KEEPALIVES, sqlalchemy_url
from shared.errors import LeadershipLost
from shared.runs import Run
from shared.settings import Settings

logger = logging.getLogger(__name__)

LEADER_LOCK_KEY = 0x5_1AB5_0003
LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"
# Whether a server process holds the leader lock (a bigint advisory key: high and low halves).
HOLDS_LOCK = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = :pid"
    " AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
POOLER_HINT = (
    "the leader lock session now runs in another server process: a transaction-mode pooler"
    " (such as PgBouncer in transaction mode) sits between the scheduler and Postgres; connect"
    " the scheduler directly or through a session-mode pool"
)


class LockSession:
    """One connection, used under a mutex: blocking acquire, checks and fenced statements."""

    def __init__(self, settings: Settings, on_lost: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.on_lost = on_lost
        self._engine = create_engine(
            sqlalchemy_url(settings.database_url),
            poolclass=NullPool,
            connect_args={
                **KEEPALIVES,
                "application_name": f"srjobs-leader-lock:{settings.node_name}",
                "connect_timeout": 5,
            },
        )
        self._conn: Connection | None = None
        self._mutex = threading.RLock()
        self.backend_pid: int | None = None
        self.held = False

    def connect(self) -> None:
        """Open the session and make the server end it when it stays idle for a lease."""
        self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        lease_ms = int(self.settings.leader_lease_seconds * 1000)
        # A frozen leader goes idle; the server ends its session, and the lock with it.
        self._conn.execute(
            text(
                "SELECT set_config('idle_session_timeout', :ms, false),"
                " set_config('tcp_user_timeout', :ms, false)"
            ),
            {"ms": str(lease_ms)},
        )
        self.backend_pid = self._conn.execute(text("SELECT pg_backend_pid()")).scalar_one()

    def acquire(self, wait_seconds: float) -> bool:
        """Block up to `wait_seconds` for the lock; True when this session now holds it."""
        assert self._conn is not None
        with self._mutex:
            self._conn.execute(
                text("SELECT set_config('lock_timeout', :t, false)"),
                {"t": f"{int(wait_seconds * 1000)}ms"},
            )
            try:
                self._conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LEADER_LOCK_KEY})
            except DBAPIError as exc:
                code = getattr(exc.orig, "pgcode", None)
                if code in (LOCK_NOT_AVAILABLE, QUERY_CANCELED):
                    return False
                raise
            self._conn.execute(text("SET lock_timeout = 0"))
            self.held = True
        try:
            self.check()
        except LeadershipLost:
            return False
        return True

    def interrupt(self) -> None:
        """Cancel a blocked acquire (shutdown)."""
        conn = self._conn
        if conn is not None and not self.held:
            try:
                raw = conn.connection.dbapi_connection
                if raw is not None:
                    raw.cancel()
            except Exception:  # the connection may be gone already; nothing to cancel
                logger.debug("cancel of the lock wait failed", exc_info=True)

    @contextmanager
    def fenced(self) -> Iterator[Connection]:
        """The lock session, while it holds the lock; a failure of it raises LeadershipLost."""
        with self._mutex:
            if not self.held or self._conn is None:
                raise LeadershipLost("this node does not hold the leader lock")
            try:
                yield self._conn
            except (OperationalError, DBAPIError) as exc:
                if isinstance(exc, OperationalError) or exc.connection_invalidated:
                    self._lose()
                    raise LeadershipLost(f"leader lock session lost: {exc.orig}") from exc
                raise

    def check(self) -> None:
        """Confirm the session (and so the lock) is alive and unmoved; raises LeadershipLost."""
        with self.fenced() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            if pid != self.backend_pid:
                logger.error("%s", POOLER_HINT)
                self._lose()
                raise LeadershipLost(POOLER_HINT)

    def confirm(self, engine: Engine) -> None:
        """Confirm, on a connection of `engine` (not waiting for this session's statements),
        that this session still holds the lock; raises LeadershipLost."""
        if not self.held or self.backend_pid is None:
            raise LeadershipLost("this node does not hold the leader lock")
        params = {
            "pid": self.backend_pid,
            "hi": LEADER_LOCK_KEY >> 32,
            "lo": LEADER_LOCK_KEY & 0xFFFFFFFF,
        }
        with engine.connect() as conn:
            holds = conn.execute(HOLDS_LOCK, params).scalar_one()
        if not holds:
            raise LeadershipLost("the leader lock session no longer holds the lock")

    def record_cron_run(self, job_name: str, slot: datetime) -> Run | None:
        """Insert the slot's run through the lock session: only a live leader can."""
        with self.fenced() as conn:
            return runs.create_cron_run(conn, job_name, slot)

    def record_cron_runs(
        self, fires: list[tuple[str, datetime]], args: list[dict] | None = None
    ) -> list[Run]:
        """Insert many slots' runs (with each fire's `args`) in one fenced statement; already
        fired slots are left out."""
        with self.fenced() as conn:
            return runs.create_cron_runs(conn, fires, args)

    def _lose(self) -> None:
        was_held, self.held = self.held, False
        if was_held and self.on_lost is not None:
            self.on_lost()

    def close(self) -> None:
        """Drop the session; the server releases the lock at once."""
        with self._mutex:
            self.held = False
            if self._conn is not None:
                try:
                    # Close the socket without the pool's rollback, which fails (and logs a
                    # traceback) on a session the server already ended.
                    self._conn.invalidate()
                    self._conn.close()
                except Exception:  # closing a dead connection may raise; it is gone either way
                    logger.debug("closing the lock session failed", exc_info=True)
                self._conn = None
        self._engine.dispose()
