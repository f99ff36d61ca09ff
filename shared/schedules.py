"""Data access for `job_schedules`: the only module that reads or writes it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from shared.cron import parse_schedule
from shared.errors import Conflict, InvalidInput, UnknownJob
from shared.tables import job_schedules


@dataclass(frozen=True)
class ScheduleSeed:
    """A job's default schedule, declared in code; seeded only when its row is missing."""

    name: str
    actor: str
    cron: str
    queue: str = "default"
    timezone: str = "UTC"
    description: str = ""
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class ScheduleCore:
    """What a declared seed and a stored schedule share: the first columns of a row."""

    name: str
    actor: str
    queue: str
    cron: str
    timezone: str
    enabled: bool


@dataclass(frozen=True)
class ScheduleRow(ScheduleCore):
    """One row of `job_schedules`."""

    description: str
    created_at: datetime
    updated_at: datetime
    stale_after_seconds: int | None = None  # None: the default (see shared.freshness)
    enabled_at: datetime | None = None  # created, or last enabled
    args: dict[str, Any] = field(default_factory=dict)
    declared: bool = False


COMMON_FIELDS = tuple(f.name for f in fields(ScheduleCore))


def common_fields(schedule: ScheduleSeed | ScheduleRow) -> dict[str, Any]:
    """The fields a declared seed and a stored schedule share, by name."""
    return {name: getattr(schedule, name) for name in COMMON_FIELDS}


# The table's columns in the dataclass's field order: rows are built by position.
ROW_COLUMNS = [job_schedules.c[f.name] for f in fields(ScheduleRow)]


def _row(row: Row[Any]) -> ScheduleRow:
    return ScheduleRow(*tuple(row))  # one value per field, in order


def seed_schedules(conn: Connection, seeds: list[ScheduleSeed]) -> int:
    """Insert the rows that do not exist yet (admins' edits win); return how many were added."""
    if not seeds:
        return 0
    for seed in seeds:
        parse_schedule(seed.cron, seed.timezone)  # a bad default fails loudly, at seed time
    stmt = (
        insert(job_schedules)
        .values(
            [{**common_fields(s), "description": s.description, "declared": True} for s in seeds]
        )
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(job_schedules.c.name)
    )
    return len(conn.execute(stmt).all())


def list_schedules(conn: Connection, *, enabled_only: bool = False) -> list[ScheduleRow]:
    """Every schedule, by name."""
    stmt = select(*ROW_COLUMNS).order_by(job_schedules.c.name)
    if enabled_only:
        stmt = stmt.where(job_schedules.c.enabled)
    return [_row(r) for r in conn.execute(stmt)]


def page_schedules(
    conn: Connection, *, contains: str, limit: int, offset: int
) -> tuple[list[ScheduleRow], int]:
    """A page of the schedules whose name contains `contains` (any case; every one when
    empty), by name, and how many there are in all."""
    match = job_schedules.c.name.icontains(contains, autoescape=True) if contains else None
    rows = select(*ROW_COLUMNS).order_by(job_schedules.c.name).limit(limit).offset(offset)
    count = select(func.count()).select_from(job_schedules)
    if match is not None:
        rows, count = rows.where(match), count.where(match)
    return [_row(r) for r in conn.execute(rows)], conn.execute(count).scalar_one()


@dataclass(frozen=True, slots=True)
class ScheduleTarget(ScheduleCore):
    """What the scheduler mirrors of a schedule; `args_json` is the stored object as text,
    parsed only when needed (reading 100,000 rows must stay cheap)."""

    args_json: str

    @property
    def args(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.args_json)
        return value


TARGETS = text(
    """
    SELECT name, actor, queue, cron, timezone, enabled, CAST(args AS text)
      FROM job_schedules
     WHERE CAST(:names AS text[]) IS NULL OR name = ANY(CAST(:names AS text[]))
    """
)


def list_targets(conn: Connection, names: set[str] | None = None) -> list[ScheduleTarget]:
    """Every schedule (or the named ones that exist) as the scheduler mirrors it."""
    params = {"names": None if names is None else sorted(names)}
    return [ScheduleTarget(*r) for r in conn.execute(TARGETS, params)]


def lock_schedule(conn: Connection, name: str) -> ScheduleRow:
    """One schedule, its row locked until the transaction ends; raises UnknownJob."""
    row = conn.execute(
        select(*ROW_COLUMNS).where(job_schedules.c.name == name).with_for_update()
    ).first()
    if row is None:
        raise UnknownJob(f"unknown job {name!r}")
    return _row(row)


def get_schedule(conn: Connection, name: str) -> ScheduleRow:
    """One schedule; raises UnknownJob."""
    row = conn.execute(select(*ROW_COLUMNS).where(job_schedules.c.name == name)).first()
    if row is None:
        raise UnknownJob(f"unknown job {name!r}")
    return _row(row)


class Unchanged:
    """Marks a nullable field a change leaves as it is."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = Unchanged()
STALE_AFTER_RANGE = (60, 366 * 86400)  # seconds; the database checks the same bounds


def check_stale_after(value: int | None) -> int | None:
    """A `stale_after_seconds` in range, or None (the default); InvalidInput otherwise."""
    low, high = STALE_AFTER_RANGE
    if value is not None and not low <= value <= high:
        raise InvalidInput(f"stale_after_seconds must be between {low} and {high}, or null")
    return value


def update_schedule(
    conn: Connection,
    name: str,
    *,
    cron: str | None = None,
    timezone: str | None = None,
    enabled: bool | None = None,
    stale_after_seconds: int | Unchanged | None = UNCHANGED,
    args: dict[str, Any] | None = None,
) -> tuple[ScheduleRow, ScheduleRow]:
    """Validate and store a change; return (old, new). Raises UnknownJob or InvalidSchedule."""
    before = lock_schedule(conn, name)
    new_cron = before.cron if cron is None else cron.strip()
    new_tz = before.timezone if timezone is None else timezone
    parse_schedule(new_cron, new_tz)
    values: dict[str, object] = {"cron": new_cron, "timezone": new_tz}
    if enabled is not None:
        values["enabled"] = enabled
    if not isinstance(stale_after_seconds, Unchanged):
        values["stale_after_seconds"] = check_stale_after(stale_after_seconds)
    if args is not None:
        values["args"] = args
    row = conn.execute(
        update(job_schedules)
        .where(job_schedules.c.name == name)
        .values(**values)
        .returning(*ROW_COLUMNS)
    ).one()
    return before, _row(row)


def get_schedules(conn: Connection, names: set[str]) -> list[ScheduleRow]:
    """The rows of the named schedules that exist, by name."""
    stmt = (
        select(*ROW_COLUMNS)
        .where(job_schedules.c.name.in_(sorted(names)))
        .order_by(job_schedules.c.name)
    )
    return [_row(r) for r in conn.execute(stmt)]


def create_schedule(
    conn: Connection,
    *,
    name: str,
    actor: str,
    queue: str,
    cron: str,
    timezone: str = "UTC",
    enabled: bool = True,
    args: dict[str, Any] | None = None,
    description: str = "",
    stale_after_seconds: int | None = None,
) -> ScheduleRow:
    """Store a runtime schedule (not declared); raises InvalidSchedule, or Conflict when the
    name is taken. The caller has validated the actor and its arguments."""
    cron = cron.strip()
    parse_schedule(cron, timezone)
    check_stale_after(stale_after_seconds)
    row = conn.execute(
        insert(job_schedules)
        .values(
            name=name,
            actor=actor,
            queue=queue,
            cron=cron,
            timezone=timezone,
            enabled=enabled,
            args=args or {},
            description=description,
            declared=False,
            stale_after_seconds=stale_after_seconds,
        )
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(*ROW_COLUMNS)
    ).first()
    if row is None:
        raise Conflict(f"a job named {name!r} already exists")
    return _row(row)


def delete_schedule(conn: Connection, name: str) -> ScheduleRow:
    """Delete a runtime schedule; its runs stay. Raises UnknownJob, or Conflict when the
    schedule is declared in code."""
    row = lock_schedule(conn, name)
    if row.declared:
        raise Conflict(
            f"{name!r} is declared in code and cannot be deleted: pause it instead"
            " (PATCH enabled=false)"
        )
    conn.execute(delete(job_schedules).where(job_schedules.c.name == name))
    return row
