"""Mirror `job_schedules` (the source of truth) into APScheduler's job store.

Unchanged schedules are left alone, so their persisted next fire time survives a failover
and a missed slot can still be caught up; changed ones are rescheduled from now.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler

from scheduler.executor import placeholder
from scheduler.slots import misfire_grace_seconds, signature
from shared.cron import parse_schedule
from shared.errors import InvalidSchedule
from shared.schedules import ScheduleRow

logger = logging.getLogger(__name__)

MAX_INSTANCES = 3


@dataclass
class Plan:
    """What to do to the job store: names to add, to reschedule, to remove."""

    add: list[ScheduleRow] = field(default_factory=list)
    change: list[ScheduleRow] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.add or self.change or self.remove)


def row_signature(row: ScheduleRow) -> str:
    return signature(row.actor, row.queue, row.cron, row.timezone)


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
    """Applies plans to a running (or paused) APScheduler."""

    def __init__(self, scheduler: BaseScheduler) -> None:
        self.scheduler = scheduler

    def stored(self) -> dict[str, str]:
        return {job.id: job.kwargs.get("sig", "") for job in self.scheduler.get_jobs()}

    def reconcile(self, rows: list[ScheduleRow], scope: set[str] | None = None) -> Plan:
        """Bring the job store in line with `rows`; `scope` limits it to some names."""
        plan = make_plan(self.stored(), rows, scope)
        now = datetime.now(UTC)
        for row in plan.add + plan.change:
            try:
                schedule = parse_schedule(row.cron, row.timezone)
            except InvalidSchedule as exc:
                logger.error("schedule %s is invalid and will not fire: %s", row.name, exc)
                self._remove(row.name)
                continue
            kwargs = {"actor": row.actor, "queue": row.queue, "sig": row_signature(row)}
            grace = misfire_grace_seconds(schedule, now)
            if row in plan.add:
                self.scheduler.add_job(
                    placeholder,
                    trigger=schedule.trigger(),
                    id=row.name,
                    name=row.name,
                    kwargs=kwargs,
                    misfire_grace_time=grace,
                    coalesce=True,
                    max_instances=MAX_INSTANCES,
                    replace_existing=True,
                )
                logger.info("scheduled %s: %s (%s)", row.name, row.cron, row.timezone)
            else:
                self.scheduler.modify_job(row.name, kwargs=kwargs, misfire_grace_time=grace)
                self.scheduler.reschedule_job(row.name, trigger=schedule.trigger())
                logger.info("rescheduled %s: %s (%s)", row.name, row.cron, row.timezone)
        for name in plan.remove:
            self._remove(name)
            logger.info("unscheduled %s (disabled or deleted)", name)
        return plan

    def _remove(self, name: str) -> None:
        try:
            self.scheduler.remove_job(name)
        except JobLookupError:
            pass
