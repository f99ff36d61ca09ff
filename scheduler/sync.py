"""Mirror `job_schedules` (the source of truth) into APScheduler's job store.

Unchanged schedules are left alone, so their persisted next fire time survives a failover
and a missed slot can still be caught up; changed ones are rescheduled from now (never
`add_job(replace_existing=True)` on start, which would drop missed slots). New jobs are
written in bulk.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler

from scheduler.executor import placeholder
from scheduler.jobstate import job_kwargs, read_kwargs
from scheduler.jobstore import ANALYZE_AFTER, FencedJobStore
from scheduler.slots import is_missed, signature
from shared.cron import ScheduleTrigger, parse_schedule
from shared.errors import InvalidSchedule
from shared.schedules import ScheduleRow, ScheduleTarget

Row = ScheduleRow | ScheduleTarget

logger = logging.getLogger(__name__)

MAX_INSTANCES = 1
LOG_EACH_UP_TO = 50  # larger syncs log one summary line


@dataclass
class Plan:
    """What to do to the job store: names to add, to reschedule, to remove."""

    add: list[Any] = field(default_factory=list)  # rows (ScheduleRow or ScheduleTarget)
    change: list[Any] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.add or self.change or self.remove)


def row_signature(row: ScheduleRow) -> str:
    return signature(row.actor, row.queue, row.cron, row.timezone, row.args)


class Signer:
    """Signatures of rows; a stored `args` text is canonicalised once per distinct text."""

    def __init__(self) -> None:
        self._args: dict[str, str] = {}
        self._parsed: dict[str, dict[str, Any]] = {}

    def args(self, row: Row) -> dict[str, Any]:
        """The row's args; parsed once per distinct text (the dict is shared: never mutate)."""
        if not isinstance(row, ScheduleTarget):
            return row.args
        parsed = self._parsed.get(row.args_json)
        if parsed is None:
            parsed = self._parsed[row.args_json] = row.args
        return parsed

    def __call__(self, row: Row) -> str:
        if not isinstance(row, ScheduleTarget):
            return row_signature(row)
        parts = [row.actor, row.queue, row.cron, row.timezone]
        if row.args_json != "{}":  # empty args add nothing (see slots.signature)
            text = self._args.get(row.args_json)
            if text is None:
                args = json.loads(row.args_json)
                text = json.dumps(args, sort_keys=True, separators=(",", ":")) if args else ""
                self._args[row.args_json] = text
            if text:
                parts.append(text)
        return "\x1f".join(parts)


def make_plan(
    stored: dict[str, str],
    rows: Sequence[Row],
    scope: set[str] | None,
    skip: frozenset[str] | set[str] = frozenset(),
    sign: Callable[[Any], str] | None = None,
) -> Plan:
    """Compare stored job signatures with the enabled rows, within `scope` (None: all), leaving
    out the names in `skip` (applied from newer rows since these were read)."""
    sign = sign or Signer()
    plan = Plan()
    wanted = {
        r.name: r
        for r in rows
        if r.enabled and (scope is None or r.name in scope) and r.name not in skip
    }
    for name, row in wanted.items():
        if name not in stored:
            plan.add.append(row)
        elif stored[name] != sign(row):
            plan.change.append(row)
    # A scoped plan looks at its names only, not at every stored job (100,000 of them).
    for name in stored if scope is None else (n for n in sorted(scope) if n in stored):
        if name not in wanted and name not in skip:
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
        self._written = 0  # jobs written since the store's statistics were refreshed

    def load(self) -> list[dict]:
        """Read every stored job's signature from the job store; return the states of the
        jobs whose next run is older than the minimum grace (the only ones catch-up reads).

        Job states are unpickled a chunk at a time and not kept: no Job objects for 100,000
        jobs (APScheduler's get_jobs builds them all at once)."""
        now = datetime.now(UTC)
        signatures: dict[str, str] = {}
        missed = []
        for state in self.store.iter_states():
            signatures[state["id"]] = read_kwargs(state["kwargs"]).sig
            at = state["next_run_time"]
            if at is not None and is_missed(at, now, self.min_grace_seconds):
                missed.append(state)
        self._signatures = signatures
        return missed

    def reconcile(
        self,
        rows: Sequence[Row],
        scope: set[str] | None = None,
        skip: frozenset[str] | set[str] = frozenset(),
    ) -> Plan:
        """Bring the job store in line with `rows`; `scope` limits it to some names, `skip`
        leaves some out. New and changed jobs are written whole, in bulk (a change is
        rescheduled from now either way)."""
        sign = Signer()
        plan = make_plan(self._signatures, rows, scope, skip, sign)
        now = datetime.now(UTC)
        new_jobs, dropped = [], list(plan.remove)
        # Schedules repeat: parse each (cron, zone) and compute its next fire once per sync.
        fires: dict[tuple[str, str], tuple[ScheduleTrigger, datetime | None] | str] = {}
        # One line per added job, at DEBUG for large syncs (and none at all when DEBUG is off:
        # 100,000 calls that log nothing still cost half a second).
        added_level: int | None = logging.INFO
        if len(plan.add) > LOG_EACH_UP_TO:
            added_level = logging.DEBUG if logger.isEnabledFor(logging.DEBUG) else None
        for row in plan.add + plan.change:
            key = (row.cron, row.timezone)
            fire = fires.get(key)
            if fire is None:
                try:
                    trigger = ScheduleTrigger(parse_schedule(row.cron, row.timezone))
                    fire = (trigger, trigger.get_next_fire_time(None, now))
                except InvalidSchedule as exc:
                    fire = str(exc)
                fires[key] = fire
            if isinstance(fire, str):
                logger.error(
                    "schedule %s is invalid and will not fire: %s",
                    row.name,
                    fire,
                    extra={"event": "schedule_invalid", "job": row.name},
                )
                if row.name in self._signatures:
                    dropped.append(row.name)
                continue
            sig = sign(row)
            options = {
                "kwargs": job_kwargs(row.actor, row.queue, sig, sign.args(row)),
                # The executor extends this minimum to one interval when a slot fires (computing
                # the interval here would cost more than the rest of a 10,000-job sync).
                "misfire_grace_time": int(self.min_grace_seconds),
                "trigger": fire[0],
                "next_run_time": fire[1],
            }
            new_jobs.append(self._new_job(row.name, options))
            if row.name in self._signatures:
                logger.info(
                    "rescheduled %s: %s (%s)",
                    row.name,
                    row.cron,
                    row.timezone,
                    extra={"event": "schedule_changed", "job": row.name},
                )
            elif added_level is not None:
                logger.log(
                    added_level,
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
        # Keep the planner's statistics in step with a growing store (bulk starts, or many
        # schedules created one by one): every time a fifth more jobs, at least ANALYZE_AFTER.
        self._written += len(new_jobs)
        if self._written >= max(ANALYZE_AFTER, len(self._signatures) // 5):
            self.store.analyze()
            self._written = 0
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
