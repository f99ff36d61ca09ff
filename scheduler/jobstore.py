"""APScheduler's SQLAlchemy job store, read and written through the leader lock session.

Every statement of the store runs on the lock session, so a node that lost the lock cannot
write `apscheduler_jobs` (a frozen leader waking up would otherwise write back stale next
run times or triggers), and a failed statement ends the leader's term.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from contextlib import contextmanager

from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.util import datetime_to_utc_timestamp
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert

from scheduler.leadership import LockSession

TABLE = "apscheduler_jobs"


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
    """The SQLAlchemy job store over the lock session; the migrations create its table."""

    def __init__(self, lock: LockSession) -> None:
        super().__init__(engine=_FencedEngine(lock), tablename=TABLE)

    def start(self, scheduler, alias) -> None:
        # The migrations own the table: skip the base class's CREATE TABLE.
        BaseJobStore.start(self, scheduler, alias)

    def add_many(self, jobs: list[Job]) -> None:
        """Insert (or replace) many jobs in one statement; the first sync of a large store."""
        if not jobs:
            return
        rows = [
            {
                "id": job.id,
                "next_run_time": datetime_to_utc_timestamp(job.next_run_time),
                "job_state": pickle.dumps(job.__getstate__(), self.pickle_protocol),
            }
            for job in jobs
        ]
        stmt = insert(self.jobs_t)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "next_run_time": stmt.excluded.next_run_time,
                "job_state": stmt.excluded.job_state,
            },
        )
        with self.engine.begin() as conn:
            for start in range(0, len(rows), 1000):
                conn.execute(stmt, rows[start : start + 1000])

    def remove_many(self, job_ids: list[str]) -> None:
        """Delete many jobs in one statement."""
        if not job_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(self.jobs_t.delete().where(self.jobs_t.c.id.in_(job_ids)))
