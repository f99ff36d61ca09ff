"""Run history at scale: 20,000,000 runs over 1,000 jobs (quick: 1,000,000).

Fills `job_runs` of a throwaway database (production indexes and triggers in place; the fill
is timed), explains every run search the admin makes, times the history API and page, the
run search with each filter and some combined, and the jobs list against a real
`srjobs webadmin`; then prunes the expired twentieth (1,000,000 runs) while a real leader fires
100 schedules `@every 1s`, and reports the prune rate, the fire lag during it, and whether the
per-job stats still match a recount.

With BENCH_HISTORY_DATABASE=<name> the fill goes to that database and is kept (its `now` and
size in the table `bench_fill`); a later run with the same name migrates it to the current
schema and reuses the fill, measures the reads only and keeps it (`run_prune` measures the
prune phase on its own fill). Drop the database by hand when done (20M runs: ~10 GB).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
from sqlalchemy.dialects import postgresql

from bench.admin_latency import _index_names, timed
from bench.scheduler_harness import Lab, Proc, percentile, poll, row, summary
from bench.support import cli
from shared.runs import runs_query
from shared.runs.id_bounds import read_bounds
from srjobs.dev import free_port
from worker.retention import prune_runs

COMMAND = "python -m bench.run_history"
JOBS = 1_000
CHUNK = 1_000_000
LAG_SCHEDULES = 100
RETENTION_DAYS = 14
KEEP_ENV = "BENCH_HISTORY_DATABASE"

# Row g of n: the first n/20 finished 15-16 days ago (expired), the rest over the last 13 days,
# oldest first like real ids. Per job (g / JOBS): 1 in 50 manual, 1 in 97 failed, 1 in 89
# discarded.
FILL = """
INSERT INTO job_runs (job_name, trigger, state, scheduled_at, created_at, enqueued_at,
                      started_at, finished_at, attempt, node, error)
SELECT 'job_' || lpad(mod(g, :jobs)::text, 4, '0'),
       CASE WHEN mod(g / :jobs, 50) = 7 THEN 'manual' ELSE 'cron' END,
       CASE WHEN mod(g / :jobs, 97) = 0 THEN 'failed'
            WHEN mod(g / :jobs, 89) = 0 THEN 'discarded' ELSE 'succeeded' END,
       CASE WHEN mod(g / :jobs, 50) <> 7 THEN t END,
       t, t + interval '20 ms', t + interval '30 ms', t + interval '1 s', 1, 'bench-worker',
       CASE WHEN mod(g / :jobs, 97) = 0 OR mod(g / :jobs, 89) = 0 THEN 'TimeoutError: bench' END
  FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS g,
       LATERAL (SELECT CASE WHEN g <= :expired
                THEN CAST(:now AS timestamptz) - interval '16 days'
                     + make_interval(secs => g * 86400.0 / :expired)
                ELSE CAST(:now AS timestamptz)
                     - make_interval(secs => (:rows - g) * 13 * 86400.0 / (:rows - :expired))
                END AS t) AS s
"""

# The stats the triggers kept against a recount from the runs (rolled back).
STATS_CHECK = """
CREATE TEMP TABLE kept ON COMMIT DROP AS SELECT * FROM job_run_stats;
SELECT srjobs_run_stats_recompute(job_name) FROM job_run_stats;
"""
STATS_DIFF = """
SELECT count(*) FROM (SELECT * FROM kept EXCEPT SELECT * FROM job_run_stats) AS d
"""


def fill(lab: Lab, rows: int, expired: int, now: datetime) -> float:
    """1,000 schedules and `rows` finished runs over them; seconds it took (with ANALYZE)."""
    started = time.monotonic()
    lab.sql(
        "INSERT INTO job_schedules (name, actor, cron) SELECT 'job_' || lpad(i::text, 4, '0'),"
        " 'refresh_trace_summaries', '0 0 1 1 *' FROM generate_series(0, :n - 1) AS i",
        n=JOBS,
    )
    for lo in range(1, rows + 1, CHUNK):
        params = dict(jobs=JOBS, lo=lo, hi=min(rows, lo + CHUNK - 1), expired=expired, rows=rows)
        lab.sql(FILL, now=now, **params)
    with lab.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE job_runs")
    return time.monotonic() - started


def searches(rows: int, now: datetime) -> dict[str, Callable[[random.Random], dict]]:
    """Each timed search: its `list_runs` filters, drawn afresh per request."""

    def job(rng: random.Random) -> str:
        return f"job_{rng.randrange(JOBS):04d}"

    def day(rng: random.Random, days: int) -> datetime:
        return now - timedelta(days=rng.uniform(1, days))

    def older(rng: random.Random) -> int:
        return rng.randrange(rows // 10, rows)

    return {
        "no filter": lambda r: {},
        "job": lambda r: {"job": job(r)},
        "state=failed": lambda r: {"state": "failed"},
        "state=running (none)": lambda r: {"state": "running"},
        "trigger=manual": lambda r: {"trigger": "manual"},
        "since (last hour)": lambda r: {"since": now - timedelta(hours=1)},
        "until (1-12 days ago)": lambda r: {"until": day(r, 12)},
        "since+until (one hour, 1-12 days ago)": lambda r: {
            "since": (u := day(r, 12)) - timedelta(hours=1),
            "until": u,
        },
        "before (keyset page)": lambda r: {"before": older(r)},
        "job+state=failed": lambda r: {"job": job(r), "state": "failed"},
        "job+trigger=manual": lambda r: {"job": job(r), "trigger": "manual"},
        "job+before": lambda r: {"job": job(r), "before": older(r)},
        "job+since+until": lambda r: {
            "job": job(r),
            "since": (u := day(r, 12)) - timedelta(hours=6),
            "until": u,
        },
        "state+trigger+until": lambda r: {
            "state": "discarded",
            "trigger": "manual",
            "until": day(r, 12),
        },
    }


def _query(filters: dict) -> str:
    return urlencode(
        {k: v.isoformat() if isinstance(v, datetime) else v for k, v in filters.items()}
    )


def plan(lab: Lab, filters: dict) -> str:
    """The indexes the run search's own statement uses for these filters."""
    kwargs = {("job_name" if k == "job" else k): v for k, v in filters.items()}
    with lab.engine.connect() as conn:
        bounds = read_bounds(conn, kwargs.get("since"), kwargs.get("until"))
    stmt = runs_query(**kwargs, bounds=bounds).compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    found = lab.sql(f"EXPLAIN (FORMAT JSON) {stmt}").scalar()  # literal, built by SQLAlchemy
    return ", ".join(sorted(set(_index_names(json.dumps(found))))) or "SEQ SCAN"


def admin(lab: Lab) -> tuple[Proc, str]:
    """A real `srjobs webadmin` on the lab's database, answering."""
    port = free_port()
    proc = lab.service("admin", "webadmin", "--port", str(port))
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return proc.popen.poll() is not None  # raise below rather than wait it out

    poll(healthy, 60, "the admin", 0.1)
    if proc.popen.poll() is not None:
        raise RuntimeError("the admin exited at start")
    return proc, base


def capped(client: httpx.Client, paths: list[str], budget_s: float = 30) -> list[float]:
    """`timed` over the paths, ten at a time, stopping once a case has had `budget_s` (a slow
    search at 20M rows would otherwise take the whole run)."""
    values: list[float] = []
    deadline = time.monotonic() + budget_s
    for at in range(0, len(paths), 10):
        values += timed(client, paths[at : at + 10])
        if time.monotonic() > deadline:
            break
    return values


def latencies(lab: Lab, rows: int, now: datetime, requests: int) -> list[dict]:
    rng = random.Random(16)
    proc, base = admin(lab)
    jobs = [f"job_{rng.randrange(JOBS):04d}" for _ in range(requests)]
    cases: dict[str, tuple[list[str], str]] = {
        "job history API": ([f"/api/jobs/{j}/runs" for j in jobs], plan(lab, {"job": "job_0042"})),
        "job page": ([f"/jobs/{j}" for j in jobs], "-"),
        "jobs list API (1,000 jobs)": (["/api/jobs"] * (requests // 5), "-"),
        "jobs list page (first 50 of 1,000 jobs)": (["/jobs"] * (requests // 5), "-"),
    }
    for label, draw in searches(rows, now).items():
        paths = [f"/api/runs?{_query(draw(rng))}" for _ in range(requests)]
        cases[f"run search, {label}"] = (paths, plan(lab, draw(random.Random(1))))
    out = []
    with httpx.Client(base_url=base, timeout=30) as client:
        timed(client, [p for paths, _ in cases.values() for p in paths[:5]])  # warm up
        for label, (paths, used) in cases.items():
            values = capped(client, paths)
            p99 = percentile(values, 99)
            out.append(
                row(
                    f"run history: {label}, {rows:,} runs over {JOBS:,} jobs",
                    "p99 < 50 ms",
                    f"{summary(values)}; plan: {used};"
                    f" {'meets' if p99 < 50 else 'misses'} the target",
                    "-",
                    COMMAND,
                )
            )
    proc.stop()
    return out


def prune_under_fire(lab: Lab, expired: int) -> list[dict]:
    """Prune the expired runs while a leader fires 100 schedules a second."""
    lab.sql(
        "INSERT INTO job_schedules (name, actor, cron) SELECT 'lag_' || i,"
        " 'refresh_trace_summaries', '@every 1s' FROM generate_series(1, :n) AS i",
        n=LAG_SCHEDULES,
    )
    leader = lab.scheduler("history-leader")
    poll(lambda: leader.events("leader_ready"), 60, "the leader", 0.05)
    # The window opens 8 s before the prune and closes 8 s after it (20 s at least): the slots
    # due outside the prune are the baseline of the same leader under the same load.
    start = int(time.time()) + 3
    poll(lambda: time.time() >= start + 8, 20, "the window", 0.05)
    prunable = lab.sql(
        "SELECT count(*) FROM job_runs WHERE finished_at < now() - make_interval(days => :d)"
        " AND state IN ('succeeded', 'discarded')",
        d=RETENTION_DAYS,
    ).scalar()
    began, began_at = time.monotonic(), time.time()
    pruned = prune_runs(lab.engine, RETENTION_DAYS)
    seconds, ended_at = time.monotonic() - began, time.time()
    end = max(int(time.time()) + 9, start + 20)
    poll(lambda: time.time() > end + 2, 60, "the end of the window", 0.2)
    window = {"a": datetime.fromtimestamp(start, UTC), "b": datetime.fromtimestamp(end, UTC)}
    fired = lab.sql(
        "SELECT extract(epoch FROM scheduled_at), extract(epoch FROM enqueued_at - scheduled_at)"
        " FROM job_runs WHERE job_name LIKE 'lag\\_%' AND scheduled_at >= :a"
        " AND scheduled_at < :b AND enqueued_at IS NOT NULL",
        **window,
    ).all()
    lags = [float(lag) * 1000 for _, lag in fired]
    during = [float(lag) * 1000 for at, lag in fired if began_at - 1 <= at <= ended_at]
    outside = [float(lag) * 1000 for at, lag in fired if not began_at - 1 <= at <= ended_at + 1]
    expected = LAG_SCHEDULES * (end - start)
    leader.stop()
    with lab.engine.connect() as conn:
        conn.exec_driver_sql(STATS_CHECK)
        wrong = conn.exec_driver_sql(STATS_DIFF).scalar()
        conn.rollback()
    rate = pruned / seconds
    p99 = percentile(lags, 99) if lags else float("inf")
    return [
        row(
            f"run history: prune {expired:,} expired runs",
            ">= 100,000 rows/s",
            f"{pruned:,} of {prunable:,} prunable runs in {seconds:.1f} s = {rate:,.0f} rows/s;"
            " per-job stats after it:"
            f" {wrong} of {JOBS:,} differ from a recount;"
            f" {'meets' if rate >= 100_000 and pruned == prunable else 'misses'} the target",
            "-",
            COMMAND,
        ),
        row(
            "run history: fire lag while pruning",
            "p99 < 100 ms",
            f"{summary(lags)}, {len(lags)} of {expected} slots enqueued; slots due while"
            f" pruning: {summary(during)}; slots due before and after it: {summary(outside)};"
            f" {LAG_SCHEDULES} schedules @every 1s; {'meets' if p99 < 100 else 'misses'}"
            " the target",
            "-",
            COMMAND,
        ),
    ]


def kept_fill(lab: Lab, rows: int) -> datetime | None:
    """The `now` of a kept fill of `rows` runs in the lab's database, if it holds one."""
    lab.sql("CREATE TABLE IF NOT EXISTS bench_fill (now timestamptz NOT NULL, rows bigint)")
    found = lab.sql("SELECT now, rows FROM bench_fill").first()
    if found is not None and found.rows == rows:
        return found.now
    if found is not None or lab.sql("SELECT EXISTS (SELECT FROM job_runs)").scalar():
        raise RuntimeError(f"{lab.db_name} holds another fill: drop it or name another database")
    return None


def run(quick: bool) -> list[dict]:
    rows = 1_000_000 if quick else 20_000_000
    expired = rows // 20
    kept = os.environ.get(KEEP_ENV)
    with Lab(database=kept) as lab:
        now = kept_fill(lab, rows) if kept else None
        if now is not None:
            took = f"reused the fill of {now:%Y-%m-%d %H:%M} UTC kept in {kept}"
        else:
            now = datetime.now(UTC)
            seconds = fill(lab, rows, expired, now)
            took = f"{seconds:.0f} s ({rows / seconds:,.0f} rows/s, with VACUUM ANALYZE)"
            if kept:
                lab.sql("INSERT INTO bench_fill VALUES (:now, :rows)", now=now, rows=rows)
        out = [
            row(
                f"run history: fill {rows:,} runs (INSERT ... SELECT, indexes and triggers on)",
                "-",
                took,
                "-",
                COMMAND,
            )
        ]
        out += latencies(lab, rows, now, 100 if quick else 300)
        if not kept:  # a kept fill stays as it is: run_prune measures the prune phase
            out += prune_under_fire(lab, expired)
    return out


if __name__ == "__main__":
    sys.exit(cli(__doc__, run, "1,000,000 runs, fewer requests"))
