"""The body of GET /api/jobs, written from pieces of JSON kept per job while its rows stand.

What the list shows of a job is a function of three rows (its schedule, its stats, its newest
run) and of the clock. Each request reads every job's key (shared.job_listing.KEY: the row
versions, a few bytes a job) and reads in full only the jobs whose key it has not seen. A
job's JSON is kept as the bytes between the three clock-dependent values (`next_run_at`,
`health`, `stale_after_seconds`), computed afresh each request as `webadmin.views` does. The
body is byte for byte `fastjson.dumps([job.as_data() for job in views.list_jobs(conn)])`:
tests/integration/test_jobs_body.py compares them as rows change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection

from shared import job_listing
from shared.cron import Schedule
from shared.db import load_json
from shared.errors import InvalidSchedule
from shared.freshness import health_of, stale_after_for
from shared.job_listing import KEY_FIELDS, STATS
from shared.run_stats import FIELDS, SCHEDULE_FIELDS
from shared.runs.model import RUN_FIELDS
from shared.schedules import COMMON_FIELDS
from webadmin import views
from webadmin.fastjson import dumps

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
MICROS = 1_000_000
HEALTHS = {h: orjson.dumps(h) for h in ("paused", "stale", "failing", "new", "ok")}
NULL = b"null"
# Where LISTING's columns sit in a keyed row (after the key).
AT = {name: KEY_FIELDS + i for i, name in enumerate(SCHEDULE_FIELDS)}
COMMON = slice(AT[COMMON_FIELDS[0]], AT[COMMON_FIELDS[-1]] + 1)
CRON, ZONE, ENABLED, DESCRIPTION = AT["cron"], AT["timezone"], AT["enabled"], AT["description"]
CREATED, UPDATED, ENABLED_AT = AT["created_at"], AT["updated_at"], AT["enabled_at"]
STALE_AFTER, JOB_ARGS, DECLARED = AT["stale_after_seconds"], AT["args"], AT["declared"]
STATE, SUCCESS, FAILURES = (KEY_FIELDS + FIELDS + i for i in range(STATS))
RUN = KEY_FIELDS + FIELDS + STATS
RUN_END = RUN + len(RUN_FIELDS)


class Piece(NamedTuple):
    """A job's JSON but its clock-dependent values, and what those are computed from."""

    head: bytes  # up to `"next_run_at":`
    middle: bytes  # up to `"health":`
    tail: bytes  # up to `"stale_after_seconds":`
    end: bytes  # the rest
    schedule: Schedule | None  # None: the stored expression cannot be read
    enabled: bool
    cron: str
    timezone: str
    stale_after: int | None  # configured (None: the default)
    since: int  # microseconds since the epoch staleness counts from
    outcome: str | None  # "succeeded", "failed" or None (no outcome yet)


def piece(row: tuple[Any, ...]) -> Piece:
    """A job's piece from its keyed row (shared.job_listing.keyed_jobs)."""
    cron, zone, enabled = row[CRON], row[ZONE], row[ENABLED]
    state, success = row[STATE], row[SUCCESS]
    try:
        schedule: Schedule | None = views.parsed(cron, zone)
        description = views.describe(schedule)
    except InvalidSchedule as exc:
        schedule, description = None, f"invalid schedule: {exc}"
    head = dict(zip(COMMON_FIELDS, row[COMMON], strict=True))
    head["description"] = description
    head["job_description"] = row[DESCRIPTION]
    last_run = None
    if row[RUN] is not None:
        last_run = dict(zip(RUN_FIELDS, row[RUN:RUN_END], strict=True))
        raw = last_run["args"]
        last_run["args"] = None if raw is None else load_json(raw)
    if state is None:
        tail: dict[str, Any] = {"last_success_at": None, "consecutive_failures": 0}
        outcome = None
    else:
        tail = {"last_success_at": success, "consecutive_failures": row[FAILURES]}
        outcome = "succeeded" if state == "succeeded" else "failed"
    since = row[ENABLED_AT] or row[CREATED]
    if outcome is not None and success is not None and success > since:
        since = success
    return Piece(
        dumps(head)[:-1] + b',"next_run_at":',
        b',"last_run":'
        + (NULL if last_run is None else dumps(last_run))
        + b',"updated_at":'
        + dumps(row[UPDATED])
        + b',"health":',
        b"," + dumps(tail)[1:-1] + b',"stale_after_seconds":',
        b',"args":'
        + dumps(load_json(row[JOB_ARGS]))
        + b',"declared":'
        + (b"true" if row[DECLARED] else b"false")
        + b"}",
        schedule,
        enabled,
        cron,
        zone,
        row[STALE_AFTER],
        (since - EPOCH) // MICROSECOND,
        outcome,
    )


class JobsBody:
    """The GET /api/jobs body of one database, with the pieces of its last body kept."""

    def __init__(self) -> None:
        # The session values the pieces were written under, and the pieces by job key.
        self._kept: tuple[list[Any], dict[tuple[Any, ...], Piece]] = ([], {})

    def body(self, conn: Connection) -> bytes:
        """Every job, as the JSON body of GET /api/jobs (`conn` in a REPEATABLE READ
        transaction: its keys and rows read from one snapshot)."""
        return write(*self.read(conn))

    def read(self, conn: Connection) -> tuple[datetime, list[Piece]]:
        """The database's clock and every job's piece, by name."""
        now, *session = job_listing.session(conn)
        kept_session, kept = self._kept
        if kept and kept_session == session:
            keys = job_listing.job_keys(conn)
            missing = [key[0] for key in keys if key not in kept]
            rows = job_listing.keyed_jobs(conn, missing) if missing else []
            fresh = {row[:KEY_FIELDS]: piece(row) for row in rows}
            pieces = [kept.get(key) or fresh[key] for key in keys]
        else:  # nothing to keep: every row at once
            rows = job_listing.keyed_jobs(conn)
            keys = [row[:KEY_FIELDS] for row in rows]
            pieces = [piece(row) for row in rows]
        # What this body used, swapped whole (a concurrent request keeps its own or this).
        self._kept = (session, dict(zip(keys, pieces, strict=True)))
        return now, pieces


def write(now: datetime, pieces: list[Piece]) -> bytes:
    """The body: each piece with its values at `now`, as `views.job_view` computes them."""
    now_us = (now - EPOCH) // MICROSECOND
    fires: dict[tuple[str, str], bytes] = {}
    out = [b"["]
    for p in pieces:
        stale_after = p.stale_after
        if stale_after is None:
            stale_after = stale_after_for(None, p.cron, p.timezone, now)
        if stale_after is None:
            health = health_of(p.enabled, None, now_us, p.outcome)
        else:
            health = health_of(p.enabled, p.since + stale_after * MICROS, now_us, p.outcome)
        fire = NULL
        if p.schedule is not None and p.enabled:
            key = (p.cron, p.timezone)
            if key not in fires:
                fires[key] = orjson.dumps(views.next_fire(p.schedule, now))
            fire = fires[key]
        out += (
            p.head,
            fire,
            p.middle,
            HEALTHS[health],
            p.tail,
            NULL if stale_after is None else str(stale_after).encode(),
            p.end,
            b",",
        )
    if pieces:
        out[-1] = b"]"
    else:
        out.append(b"]")
    return b"".join(out)
