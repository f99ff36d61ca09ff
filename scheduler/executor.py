"""An APScheduler executor that records each fire through the lock session, then sends it.

APScheduler 3.x calls a job's function without the time it was scheduled for; srjobs needs
that time as the run's `scheduled_at` (the fencing key). This executor records the run in
the scheduler's own thread, before APScheduler stores the job's next run time, so a crash
between the two leaves the slot due for the next leader rather than lost. Sending the
message is handed to the outbox thread.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Protocol

from apscheduler.executors.base import BaseExecutor

from scheduler import metrics
from scheduler.leadership import LockSession
from scheduler.slots import is_missed, misfire_grace_seconds
from shared.runs import Run

logger = logging.getLogger(__name__)


class Sender(Protocol):
    def send(self, run: Run, actor: str, queue: str) -> None: ...


def placeholder(**kwargs: object) -> None:
    """The stored function of every srjobs APScheduler job; FireExecutor never calls it."""


class FireExecutor(BaseExecutor):
    """Coalesces a job's due slots into the newest one, records it (fenced) and sends it."""

    def __init__(self, lock: LockSession, sender: Sender, min_grace_seconds: float) -> None:
        super().__init__()
        self._lock_session = lock
        self._sender = sender
        self._min_grace = min_grace_seconds

    def submit_job(self, job, run_times: list[datetime]) -> None:
        # Called by APScheduler's loop; a LeadershipLost raised here also fails the store
        # update that follows (same session), so the slot stays due for the next leader.
        slot = run_times[-1]
        first = job.next_run_time
        if first is not None and first < slot:
            logger.info(
                "coalesced the missed slots of %s from %s into %s",
                job.id,
                first.isoformat(),
                slot.isoformat(),
                extra={"job": job.id, "first_missed": first.isoformat(), "slot": slot.isoformat()},
            )
        now = datetime.now(UTC)
        grace = misfire_grace_seconds(job.trigger.schedule, now, self._min_grace)
        if is_missed(slot, now, grace):
            logger.warning(
                "skipped slot %s of %s: older than the %ss grace",
                slot.isoformat(),
                job.id,
                grace,
                extra={"job": job.id, "slot": slot.isoformat()},
            )
            metrics.MISSED.labels(job.id).inc()
            return
        run = self._lock_session.record_cron_run(job.id, slot)
        if run is None:
            logger.info(
                "slot %s of %s already fired",
                slot.isoformat(),
                job.id,
                extra={"job": job.id, "slot": slot.isoformat()},
            )
            return
        lag = (datetime.now(UTC) - slot).total_seconds()
        metrics.FIRES.labels(job.id).inc()
        metrics.FIRE_LAG.observe(lag)
        logger.info(
            "fired %s slot %s as run %d",
            job.id,
            slot.isoformat(),
            run.id,
            extra={"job": job.id, "slot": slot.isoformat(), "run_id": run.id, "lag_s": lag},
        )
        self._sender.send(run, job.kwargs["actor"], job.kwargs["queue"])

    def _do_submit_job(self, job, run_times) -> None:
        raise NotImplementedError("submit_job does the work")
