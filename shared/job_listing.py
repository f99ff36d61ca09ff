"""Every job for the jobs list: its schedule, run stats and newest run, in one statement.

Three reads (schedules, stats, a probe per job for its newest run) become one scan of the
schedules joined with their stats and, per job, the run `job_run_newest` names (migration
0007): a primary-key probe among the newest runs, whose pages stay hot, where probing
`job_runs_job_newest` read a different leaf page per job. When that run is gone (pruned,
deleted, moved to another job) the job's runs below its id are probed instead, as before.
Rows are read at once and built by position (a thousand rows: no per-row mapping), `args` as
text (mostly `{}`, which needs no parser). The values are those of `schedules.list_schedules`,
`run_stats.healths` and `runs.last_runs` read in one transaction:
tests/integration/test_jobs_list.py and test_run_newest.py compare them.

GET /api/jobs reads the same join in two steps (webadmin.jobs_body): every job's key (the
versions of its three rows, see KEY), then the full rows of the jobs whose key it has not
seen, so that an unchanged job costs a few values instead of thirty.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, TextClause, text

from shared.db import load_json
from shared.run_stats import ARGS, COLUMNS, FIELDS, MAX_COUNTED_FAILURES, JobHealth, job_health
from shared.runs import Run
from shared.runs.model import RUN_FIELDS
from shared.schedules import ScheduleRow

RUN_ARGS = RUN_FIELDS.index("args")
STATS = 3  # outcome state, last success, failures (capped)
NEWEST = ", ".join("CAST(args AS text) AS args" if f == "args" else f for f in RUN_FIELDS)
# A row's version: Postgres gives each row version the id of the transaction that wrote it
# (`xmin`), so an unchanged version means unchanged values.
VERSION = "CAST(xmin AS text) AS version"
# Per job: its name and the versions of its schedule row, stats row and newest run (its id and
# version): the key of what the jobs list shows of it (webadmin.jobs_body).
KEY = "s.name, CAST(s.xmin AS text), CAST(st.xmin AS text), r.id, r.version"
KEY_FIELDS = 5
COLUMNS_ALL = f"""{", ".join(COLUMNS)},
           st.outcome_state, st.success_at,
           CASE WHEN st.outcome_state IS NULL OR st.outcome_state = 'succeeded' THEN 0
                ELSE LEAST(st.failures, :max_failures) END,
           {", ".join(f"r.{f}" for f in RUN_FIELDS)}"""


def _listing(columns: str, runs: str, where: str = "") -> TextClause:
    """The jobs by name, each joined with its stats and newest run (`r`, `runs` of it)."""
    return text(  # every piece is one of this module's constants
        f"""
    SELECT {columns}
      FROM job_schedules s
      LEFT JOIN job_run_stats st ON st.job_name = s.name
      LEFT JOIN job_run_newest n ON n.job_name = s.name
      LEFT JOIN LATERAL (
            -- By its id alone (the fence keeps the job's index out), then its job checked.
            (SELECT {runs} FROM (SELECT *, {VERSION} FROM job_runs WHERE id = n.run_id OFFSET 0)
                 AS x WHERE job_name = s.name)
            UNION ALL  -- read only when the run above is gone
            (SELECT {runs} FROM (SELECT *, {VERSION} FROM job_runs
                                  WHERE job_name = s.name AND id < n.run_id
                                  ORDER BY id DESC LIMIT 1) AS y)
            LIMIT 1) AS r ON true
     {where}
     ORDER BY s.name
    """  # noqa: S608
    )


LISTING = _listing(COLUMNS_ALL, NEWEST)
KEYS = _listing(KEY, "id, version")
# The named jobs' keys and LISTING's columns.
KEYED = _listing(
    f"{KEY}, {COLUMNS_ALL}",
    f"{NEWEST}, version",
    "WHERE CAST(:names AS text[]) IS NULL OR s.name = ANY(CAST(:names AS text[]))",
)
# What a key holds besides the versions: the clock and the session's zone (times are written
# in it), and when the server started (a row version is known by its id on one server only).
SESSION = text("SELECT now(), current_setting('TimeZone'), pg_postmaster_start_time()")


def session(conn: Connection) -> tuple[Any, ...]:
    """`(now, zone, server start)`: the clock, and what the keys of this session hold to."""
    return tuple(conn.execute(SESSION).one())


def job_keys(conn: Connection) -> list[tuple[Any, ...]]:
    """By name, every job's key (see KEY)."""
    return [tuple(row) for row in conn.execute(KEYS).all()]


def keyed_jobs(conn: Connection, names: list[str] | None = None) -> list[tuple[Any, ...]]:
    """By name, the named jobs' (every job's when None) keys then LISTING's columns."""
    params = {"names": names, "max_failures": MAX_COUNTED_FAILURES}
    return [tuple(row) for row in conn.execute(KEYED, params).all()]


def every_job(conn: Connection) -> tuple[datetime, list[tuple[ScheduleRow, JobHealth, Run | None]]]:
    """The database's clock and, by name, every schedule with its health and newest run."""
    now = conn.execute(text("SELECT now()")).scalar_one()
    found = []
    run_at = FIELDS + STATS
    for row in conn.execute(LISTING, {"max_failures": MAX_COUNTED_FAILURES}).all():
        values = (*row[:ARGS], load_json(row[ARGS]), *row[ARGS + 1 : FIELDS])
        schedule = ScheduleRow(*values)
        fresh = job_health(schedule, row[FIELDS], row[FIELDS + 1], row[FIELDS + 2], now)
        last = None
        if row[run_at] is not None:
            raw = row[run_at + RUN_ARGS]
            args = None if raw is None else load_json(raw)
            values = (*row[run_at : run_at + RUN_ARGS], args, *row[run_at + RUN_ARGS + 1 :])
            last = Run(*values)
        found.append((schedule, fresh, last))
    return now, found
