"""An APScheduler executor that hands each fire its own slot time.

APScheduler 3.x calls a job's function without the time it was scheduled for; srjobs needs
that time as the run's `scheduled_at` (the fencing key), so this executor calls a fire
callback with (job id, job kwargs, slot) instead of the job's function.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.base import BaseExecutor

from scheduler.slots import is_missed

logger = logging.getLogger(__name__)

FireCallback = Callable[[str, dict, datetime], None]


def placeholder(**kwargs: object) -> None:
    """The stored function of every srjobs APScheduler job; FireExecutor never calls it."""


class FireExecutor(BaseExecutor):
    """Runs `fire(job_id, kwargs, slot)` in a small thread pool."""

    def __init__(self, fire: FireCallback, max_workers: int = 8) -> None:
        super().__init__()
        self._fire = fire
        self._max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None

    def start(self, scheduler, alias) -> None:
        super().start(scheduler, alias)
        self._pool = ThreadPoolExecutor(self._max_workers, thread_name_prefix="srjobs-fire")

    def shutdown(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait)

    def _do_submit_job(self, job, run_times) -> None:
        assert self._pool is not None
        future = self._pool.submit(self._run, job, run_times)

        def done(f) -> None:
            if f.exception() is not None:
                self._run_job_error(job.id, f.exception())
            else:
                self._run_job_success(job.id, f.result())

        future.add_done_callback(done)

    def _run(self, job, run_times: list[datetime]) -> list[JobExecutionEvent]:
        events = []
        for slot in run_times:
            if job.misfire_grace_time is not None and is_missed(
                slot, datetime.now(UTC), job.misfire_grace_time
            ):
                logger.warning(
                    "skipped slot %s of %s: older than the %ss grace",
                    slot.isoformat(),
                    job.id,
                    job.misfire_grace_time,
                    extra={"job": job.id, "slot": slot.isoformat()},
                )
                events.append(
                    JobExecutionEvent(EVENT_JOB_MISSED, job.id, self._jobstore(job), slot)
                )
                continue
            try:
                self._fire(job.id, dict(job.kwargs), slot)
            except Exception as exc:
                logger.exception("fire of %s for slot %s failed", job.id, slot.isoformat())
                events.append(
                    JobExecutionEvent(
                        EVENT_JOB_ERROR, job.id, self._jobstore(job), slot, exception=exc
                    )
                )
            else:
                events.append(
                    JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, self._jobstore(job), slot)
                )
        return events

    @staticmethod
    def _jobstore(job) -> str:
        return job._jobstore_alias
