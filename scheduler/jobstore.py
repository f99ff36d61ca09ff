"""APScheduler's SQLAlchemy job store, read and written through the leader lock session.

Every statement of the store runs on the lock session, so a node that lost the lock cannot
write `apscheduler_jobs` (a frozen leader waking up would otherwise write back stale next
run times or triggers), and a failed statement ends the leader's term.
"""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.util import datetime_to_utc_timestamp
from sqlalchemy import Connection, func, select, text

from scheduler.leadership import LockSession

TABLE = "apscheduler_jobs"
CHUNK = 2000
# Writing this many jobs refreshes the table's statistics: until autovacuum gets to it, the
# planner reads a freshly filled table by sequential scan, and every pass of the loop (its
# due jobs) costs 25-40 ms at 100,000 jobs instead of an index probe.
ANALYZE_AFTER = 1000
# Arrays in, one statement per chunk: a multi-row VALUES or executemany costs seconds for
# 10,000 jobs (compiling, or a round trip per row).
UPSERT = text(
    """
    INSERT INTO apscheduler_jobs (id, next_run_time, job_state)
    SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:times AS float8[]), CAST(:states AS bytea[]))
    ON CONFLICT (id) DO UPDATE
        SET next_run_time = excluded.next_run_time, job_state = excluded.job_state
    """
)

CHUNK_OF_STATES = (
    "SELECT id, job_state FROM apscheduler_jobs WHERE id > %(after)s ORDER BY id LIMIT %(n)s"
)


class _FencedEngine:
    """The part of an Engine the job store uses, served by the lock session."""

    url = "leader-lock-session"

    def __init__(self, lock: LockSession) -> None:
        self._lock = lock

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self._lock.fenced() as conn:
            yield conn

    def dispose(self) -> None:
        """The lock session's owner closes it."""


class FencedJobStore(SQLAlchemyJobStore):
    """The SQLAlchemy job store over the lock session; the migrations create its table.

    Within a pass of the scheduler's loop, next-run updates are buffered and written in one
    statement when the loop asks for the next wake-up time, after `before_flush` (the
    executor recording the pass's fires) has run.
    """

    def __init__(self, lock: LockSession) -> None:
        super().__init__(engine=_FencedEngine(lock), tablename=TABLE)
        self.before_flush: Callable[[], None] = lambda: None
        self.store_ms = 0.0  # spent writing buffered next run times, for the pass's event
        self.due_ms = 0.0  # spent reading (and unpickling) the due jobs, for the same
        self._updates: dict[str, Job] = {}

    def _in_loop(self) -> bool:
        thread = getattr(self._scheduler, "_thread", None)
        return thread is not None and threading.current_thread() is thread

    def update_job(self, job: Job) -> None:
        if self._in_loop():
            self._updates[job.id] = job
        else:
            super().update_job(job)

    def get_due_jobs(self, now: datetime) -> list[Job]:
        started = time.perf_counter()
        jobs: list[Job] = super().get_due_jobs(now)
        self.due_ms += (time.perf_counter() - started) * 1000
        return jobs

    def get_next_run_time(self) -> datetime | None:
        self.flush()
        return super().get_next_run_time()

    def flush(self) -> None:
        """Record the buffered fires, then write the buffered next run times."""
        self.before_flush()
        updates, self._updates = self._updates, {}
        if updates:
            started = time.perf_counter()
            states = [job.__getstate__() for job in updates.values()]
            self.add_many(states)
            self.store_ms += (time.perf_counter() - started) * 1000

    def discard(self) -> None:
        """Forget a failed pass's buffered updates: its slots stay due."""
        self._updates = {}
        self.store_ms = self.due_ms = 0.0

    def start(self, scheduler: BaseScheduler, alias: str) -> None:
        # The migrations own the table: skip the base class's CREATE TABLE.
        BaseJobStore.start(self, scheduler, alias)

    def add_many(self, states: list[dict]) -> None:
        """Insert (or replace) many jobs, given as Job states, in few statements."""
        for start in range(0, len(states), CHUNK):
            chunk = states[start : start + CHUNK]
            params = {
                "ids": [state["id"] for state in chunk],
                "times": [datetime_to_utc_timestamp(state["next_run_time"]) for state in chunk],
                "states": [pickle.dumps(state, self.pickle_protocol) for state in chunk],
            }
            with self.engine.begin() as conn:
                conn.execute(UPSERT, params)

    def iter_states(self) -> Iterator[dict]:
        """Every stored job's state, unpickled (no Job built), read a chunk at a time by id.
        A row that cannot be unpickled is removed, as APScheduler's own loading does."""
        after = ""
        while True:
            with self.engine.begin() as conn:
                # A driver-level statement: no per-value result processing for 100,000 rows.
                rows = conn.exec_driver_sql(CHUNK_OF_STATES, {"after": after, "n": CHUNK}).all()
            if not rows:
                return
            after = rows[-1][0]
            broken = []
            for job_id, blob in rows:
                try:
                    state = pickle.loads(blob)  # noqa: S301  (written by the leader only)
                except Exception:  # a row APScheduler could not restore either
                    self._logger.exception("Unable to restore job %s -- removing it", job_id)
                    broken.append(job_id)
                    continue
                yield state
            self.remove_many(broken)

    def analyze(self) -> None:
        """Refresh the table's planner statistics."""
        with self.engine.begin() as conn:
            conn.execute(text("ANALYZE apscheduler_jobs"))

    def count(self) -> int:
        """How many jobs the store holds."""
        with self.engine.begin() as conn:
            return conn.execute(select(func.count()).select_from(self.jobs_t)).scalar_one()

    def remove_many(self, job_ids: list[str]) -> None:
        """Delete many jobs in one statement."""
        if not job_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(self.jobs_t.delete().where(self.jobs_t.c.id.in_(job_ids)))
