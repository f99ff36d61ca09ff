"""Mirror `job_schedules` (the source of truth) into APScheduler's job store.

Unchanged schedules are left alone, so their persisted next fire time survives a failover
and a missed slot can still be caught up; changed ones are rescheduled from now (never
`add_job(replace_existing=True)` on start, which would drop missed slots). New jobs are
written in bulk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler

from scheduler.executor import placeholder
from scheduler.jobstate import job_kwargs, read_kwargs
from scheduler.jobstore import FencedJobStore
from scheduler.slots import signature
from shared.cron import ScheduleTrigger, parse_schedule
from shared.errors import InvalidSchedule
from shared.schedules import ScheduleRow

logger = logging.getLogger(__name__)

MAX_INSTANCES = 1
LOG_EACH_UP_TO = 50  # larger syncs log one summary line


@dataclass
class Plan:
    """What to do to the job store: names to add, to reschedule, to remove."""

    add: list[ScheduleRow] = field(default_factory=list)
    change: list[ScheduleRow] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.add or self.change or self.remove)


def row_signature(row: ScheduleRow) -> str:
    return signature(row.actor, row.queue, row.cron, row.timezone, row.args)


def make_plan(stored: dict[str, str], rows: list[ScheduleRow], scope: set[str] | None) -> Plan:
    """Compare stored job signatures with the enabled rows, within `scope` (None: all)."""
    plan = Plan()
    wanted = {r.name: r for r in rows if r.enabled and (scope is None or r.name in scope)}
    for name, row in wanted.items():
        if name not in stored:
            plan.add.append(row)
        elif stored[name] != row_signature(row):
            plan.change.append(row)
    for name in stored:
        if name not in wanted and (scope is None or name in scope):
            plan.remove.append(name)
    return plan


class Mirror:
    """Applies plans to a running (or paused) APScheduler; keeps each job's signature."""

    def __init__(
        self, scheduler: BaseScheduler, store: FencedJobStore, min_grace_seconds: float
    ) -> None:
        self.scheduler = scheduler
        self.store = store
        self.min_grace_seconds = min_grace_seconds
        self._signatures: dict[str, str] = {}
        self._template: dict | None = None

    def load(self) -> list[Job]:
        """Read every stored job (and its signature) from the job store."""
        jobs = self.scheduler.get_jobs()
        self._signatures = {job.id: read_kwargs(job.kwargs).sig for job in jobs}
        return jobs

    def reconcile(self, rows: list[ScheduleRow], scope: set[str] | None = None) -> Plan:
        """Bring the job store in line with `rows`; `scope` limits it to some names."""
        plan = make_plan(self._signatures, rows, scope)
        now = datetime.now(UTC)
        new_jobs, dropped = [], list(plan.remove)
        for row in plan.add + plan.change:
            try:
                schedule = parse_schedule(row.cron, row.timezone)
            except InvalidSchedule as exc:
                logger.error(
                    "schedule %s is invalid and will not fire: %s",
                    row.name,
                    exc,
                    extra={"event": "schedule_invalid", "job": row.name},
                )
                if row.name in self._signatures:
                    dropped.append(row.name)
                continue
            trigger = ScheduleTrigger(schedule)
            sig = row_signature(row)
            options = {
                "kwargs": job_kwargs(row.actor, row.queue, sig, row.args),
                # The executor extends this minimum to one interval when a slot fires (computing
                # the interval here would cost more than the rest of a 10,000-job sync).
                "misfire_grace_time": int(self.min_grace_seconds),
                "trigger": trigger,
                "next_run_time": trigger.get_next_fire_time(None, now),
            }
            if row.name in self._signatures and self._modify(row.name, options):
                logger.info(
                    "rescheduled %s: %s (%s)",
                    row.name,
                    row.cron,
                    row.timezone,
                    extra={"event": "schedule_changed", "job": row.name},
                )
            else:
                new_jobs.append(self._new_job(row.name, options))
                level = logging.INFO if len(plan.add) <= LOG_EACH_UP_TO else logging.DEBUG
                logger.log(
                    level,
                    "scheduled %s: %s (%s)",
                    row.name,
                    row.cron,
                    row.timezone,
                    extra={"event": "schedule_added", "job": row.name},
                )
            self._signatures[row.name] = sig
        self._write(new_jobs, dropped)
        return plan

    def refresh_if_drifted(self) -> None:
        """Reload the signatures when the store's job count differs from what this mirror
        wrote (APScheduler drops a job it cannot unpickle, for one)."""
        if self.store.count() != len(self._signatures):
            logger.warning("the job store changed behind the mirror: reloading it")
            self.load()

    def _modify(self, name: str, options: dict) -> bool:
        try:
            self.scheduler.modify_job(name, **options)
        except JobLookupError:
            return False  # gone from the store: added back instead
        return True

    def _new_job(self, name: str, options: dict) -> dict:
        """A new job's stored state: a template Job's state with this job's values."""
        if self._template is None:
            # Built once through Job() so APScheduler validates it; copies skip that cost.
            self._template = Job(
                self.scheduler,
                id="template",
                func=placeholder,
                args=(),
                executor="default",
                coalesce=True,
                max_instances=MAX_INSTANCES,
                **options,
            ).__getstate__()
        return {**self._template, "id": name, "name": name, **options}

    def _write(self, new_jobs: list[dict], dropped: list[str]) -> None:
        if not (new_jobs or dropped):
            return
        # One statement each, under the lock APScheduler's own job changes take, instead of
        # one add_job per schedule (each a statement and a wakeup: seconds for 10,000 jobs).
        with self.scheduler._jobstores_lock:
            self.store.add_many(new_jobs)
            self.store.remove_many(dropped)
        if len(new_jobs) > LOG_EACH_UP_TO:
            logger.info("scheduled %d new jobs", len(new_jobs), extra={"event": "schedules_added"})
        for name in dropped:
            self._signatures.pop(name, None)
            logger.info(
                "unscheduled %s (disabled, deleted or invalid)",
                name,
                extra={"event": "schedule_removed", "job": name},
            )
        self.scheduler.wakeup()
