"""The leader's APScheduler: its own pass, which prepares fires ahead of their slots.

APScheduler 3's `BackgroundScheduler` keeps its thread, wake-ups and job store handling; the
pass (`_process_jobs`) is srjobs': due jobs are read up to `LOOKAHEAD_SECONDS` ahead
(scheduler/lookahead.py), each taken slot is submitted to the `FireExecutor` before the job's
next run is buffered in the `FencedJobStore`, and the pass ends with `get_next_run_time`, which
records the fires (one fenced statement) before it writes the next run times: the fence of
docs/architecture.md. A failed pass does not kill the loop.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_PAUSED

from scheduler.executor import FireExecutor, PassTimes
from scheduler.jobstore import FencedJobStore
from scheduler.lookahead import horizon, slots_taken, wake_in
from shared.errors import LeadershipLost

logger = logging.getLogger(__name__)

PASS_RETRY_SECONDS = 0.5


class LeaderScheduler(BackgroundScheduler):
    """APScheduler whose pass prepares fires ahead and whose loop survives a failed pass (a
    database error mid-commit): the stock loop thread dies on it and the leader would
    silently stop firing."""

    def __init__(self, store: FencedJobStore, executor: FireExecutor) -> None:
        super().__init__(
            jobstores={"default": store}, executors={"default": executor}, timezone="UTC"
        )
        self._store = store
        self._executor = executor
        store.before_flush = executor.flush

    def _process_jobs(self) -> float | None:
        if self.state == STATE_PAUSED:
            return None
        started, woke = time.perf_counter(), time.time()
        try:
            wait = self._pass(datetime.now(UTC))
            self._report_pass(started, woke)
            return wait
        except LeadershipLost as exc:
            logger.warning("scheduler pass stopped: %s", exc)
        except Exception:
            logger.exception("scheduler pass failed; retrying in %ss", PASS_RETRY_SECONDS)
        # Nothing of a failed pass is kept: its slots are still due in the store (fires
        # recorded before the failure were handed over: they are logged).
        self._executor.report()
        self._executor.discard()
        self._store.discard()
        return PASS_RETRY_SECONDS

    def _pass(self, now: datetime) -> float | None:
        """Submit every slot due up to the horizon, buffer each job's next run, flush; the
        seconds until the next pass."""
        until = horizon(now)
        with self._jobstores_lock:
            for job in self._store.get_due_jobs(until):
                taken = slots_taken(job._get_run_times(until), now)
                if not taken:
                    continue
                self._executor.submit_job(job, taken)
                # From just after the newest taken slot (a future one included).
                next_run = job.trigger.get_next_fire_time(taken[-1], until)
                if next_run is None:
                    self.remove_job(job.id, "default")
                    continue
                job._modify(next_run_time=next_run)
                self._store.update_job(job)
            next_run = self._store.get_next_run_time()  # records the fires, then writes
        return wake_in(next_run, datetime.now(UTC))

    def _report_pass(self, started: float, woke: float) -> None:
        """One `fire_pass` event for a pass that fired: where its time went."""
        pass_ms = round((time.perf_counter() - started) * 1000, 1)
        self._executor.report()
        times, self._executor.times = self._executor.times, PassTimes()
        store_ms, self._store.store_ms = self._store.store_ms, 0.0
        due_ms, self._store.due_ms = self._store.due_ms, 0.0
        if times.fires:
            logger.info(
                "pass fired %d run(s)",
                times.fires,
                extra={
                    "event": "fire_pass",
                    "fires": times.fires,
                    "pass_ms": pass_ms,
                    "due_ms": round(due_ms, 1),
                    "record_ms": round(times.record_ms, 1),
                    "store_ms": round(store_ms, 1),
                    # From the newest slot (negative: before it, the pass prepared ahead).
                    "woke_ms": round((woke - times.newest_slot) * 1000, 1),
                    "handed_ms": round(times.handed_ms, 1),
                },
            )
