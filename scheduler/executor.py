"""An APScheduler executor that records each fire through the lock session, then sends it.

APScheduler 3.x calls a job's function without the time it was scheduled for; srjobs needs
that time as the run's `scheduled_at` (the fencing key). This executor collects a pass's
fires and records them in one statement, in the scheduler's own thread, before the job store
writes the pass's next run times: a crash between the two leaves the slots due for the next
leader rather than lost. Sending the messages is handed to the outbox thread.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from apscheduler.executors.base import BaseExecutor
from apscheduler.job import Job

from scheduler import metrics
from scheduler.jobstate import read_kwargs
from scheduler.leadership import LockSession
from scheduler.slots import is_missed, misfire_grace_seconds
from shared.runs import Run

logger = logging.getLogger(__name__)

LOG_EACH_FIRE_UP_TO = 100  # fires of a pass logged one `run_fired` line each (INFO)


class Sender(Protocol):
    def send_many(
        self, fired: list[tuple[Run, str, str]], not_before: datetime | None = None
    ) -> None: ...


@dataclass(frozen=True)
class Due:
    job: str
    slot: datetime
    actor: str
    queue: str
    args: dict


@dataclass
class PassTimes:
    """Where one scheduler pass spent its time (the `fire_pass` event's fields)."""

    fires: int = 0
    record_ms: float = 0.0
    store_ms: float = 0.0
    handed_ms: float = 0.0  # from the newest slot to the hand-over to the outbox
    newest_slot: float = 0.0  # the newest fired slot (epoch seconds)


def placeholder(**kwargs: object) -> None:
    """The stored function of every srjobs APScheduler job; FireExecutor never calls it.

    Job-store rows name it as `scheduler.executor:placeholder`: keep that name importable.
    """


class FireExecutor(BaseExecutor):
    """Coalesces a job's due slots into the newest one, records it (fenced) and sends it."""

    def __init__(self, lock: LockSession, sender: Sender, min_grace_seconds: float) -> None:
        super().__init__()
        self._lock_session = lock
        self._sender = sender
        self._min_grace = min_grace_seconds
        self._due: list[Due] = []
        self.times = PassTimes()
        self._fired: list[tuple[Due, Run | None, float]] = []  # handed over, not yet logged

    def submit_job(self, job: Job, run_times: list[datetime]) -> None:
        # Called by APScheduler's loop for each due job; the fire is recorded at flush().
        slot = run_times[-1]
        first = job.next_run_time
        if first is not None and first < slot:
            logger.info(
                "coalesced the missed slots of %s from %s into %s",
                job.id,
                first.isoformat(),
                slot.isoformat(),
                extra={
                    "event": "slot_coalesced",
                    "job": job.id,
                    "first_missed": first.isoformat(),
                    "slot": slot.isoformat(),
                },
            )
        now = datetime.now(UTC)
        if is_missed(slot, now, self._min_grace) and is_missed(
            slot, now, grace := misfire_grace_seconds(job.trigger.schedule, now, self._min_grace)
        ):
            logger.warning(
                "skipped slot %s of %s: older than the %ss grace",
                slot.isoformat(),
                job.id,
                grace,
                extra={"event": "slot_skipped", "job": job.id, "slot": slot.isoformat()},
            )
            metrics.MISSED.labels(job.id).inc()
            return
        target = read_kwargs(job.kwargs)
        self._due.append(Due(job.id, slot, target.actor, target.queue, target.args))

    def flush(self) -> None:
        """Record every buffered fire in one fenced statement, then hand them to the outbox
        (one piece per slot to come, one for the slots past); `report` logs them once the
        pass is done.

        The job store calls this before it writes the pass's next run times, so a slot is
        only ever marked done in the store after its run exists.
        """
        due, self._due = self._due, []
        if not due:
            return
        started = time.perf_counter()
        recorded = self._lock_session.record_cron_runs(
            [(d.job, d.slot) for d in due], [d.args for d in due]
        )
        now = datetime.now(UTC)
        self.times.record_ms += (time.perf_counter() - started) * 1000
        self.times.fires += len(recorded)
        runs = {(run.job_name, run.scheduled_at): run for run in recorded}
        fired = [(d, runs.get((d.job, d.slot))) for d in due]
        newest = max(d.slot for d in due)
        self.times.newest_slot = newest.timestamp()
        self.times.handed_ms = (datetime.now(UTC) - newest).total_seconds() * 1000
        # Slots past go out at once; each slot to come is held by the outbox until it comes.
        by_slot: dict[datetime | None, list[tuple[Run, str, str]]] = {}
        for d, run in fired:
            if run is not None:
                key = d.slot if d.slot > now else None
                by_slot.setdefault(key, []).append((run, d.actor, d.queue))
        for slot, batch in sorted(by_slot.items(), key=lambda item: item[0] or now):
            self._sender.send_many(batch, not_before=slot)
        self._fired.extend((d, run, (now - d.slot).total_seconds()) for d, run in fired)

    def report(self) -> None:
        """Log and count the fires handed over since the last report (off the fire path)."""
        fired, self._fired = self._fired, []
        # A line per fire costs more than the rest of a large pass: it then goes to DEBUG,
        # and the pass's `fire_pass` event (INFO) counts the fires.
        level = logging.INFO if len(fired) <= LOG_EACH_FIRE_UP_TO else logging.DEBUG
        for d, run, lag in fired:
            if run is None:
                logger.info(
                    "slot %s of %s already fired",
                    d.slot.isoformat(),
                    d.job,
                    extra={"event": "slot_already_fired", "job": d.job, "slot": d.slot.isoformat()},
                )
                continue
            metrics.FIRES.labels(d.job).inc()
            metrics.FIRE_LAG.observe(max(0.0, lag))  # < 0: recorded ahead
            logger.log(
                level,
                "fired %s slot %s as run %d",
                d.job,
                d.slot.isoformat(),
                run.id,
                extra={
                    "event": "run_fired",
                    "job": d.job,
                    "slot": d.slot.isoformat(),
                    "run_id": run.id,
                    "lag_s": lag,
                },
            )

    def discard(self) -> None:
        """Forget buffered fires of a failed pass; their slots stay due in the store."""
        self._due = []
        self.times = PassTimes()

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        raise NotImplementedError("submit_job does the work")
