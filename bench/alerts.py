"""Freshness and alerts: health of 10,000 jobs, and a change of health to its webhook.

1. Fills a throwaway database with 10,000 schedules (20 kinds of cron) and 20 runs each, then
   times, in this process: the health the jobs list needs (`run_stats.healths`: one read of
   the stats table and the rules applied to the schedules the list reads anyway), a /metrics
   scrape (snapshot and exposition), and for scale the whole of the other two readers of
   every job's health: the body of GET /api/jobs (the same health, each job's last run and
   next fire, as JSON) and the data of the /jobs page (the same, with each job's newest runs
   for its sparkline; not the HTML).
2. Starts a real `srjobs scheduler` whose alerts go to an HTTP receiver on loopback, and
   records 50 changes of health (a run failing, then succeeding, for one job): the time from
   the run's outcome being committed to the webhook arriving.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import psycopg2
from sqlalchemy import text

from bench.support import bench_settings
from shared import run_stats, schedules
from shared.db import dsn, make_engine
from tests.support.receiver import Receiver
from webadmin import job_metrics, services
from webadmin.job_list import JobsQuery

COMMAND = "python -m bench alerts"
CRONS = [
    "*/2 * * * *",
    "*/5 * * * *",
    "0 * * * *",
    "0 9 * * 1-5",
    "30 2 * * *",
    "@every 30s",
    "@every 10m",
    "15 */6 * * *",
    "0 0 * * 0",
    "*/15 9-17 * * 1-5",
]
ZONES = ["UTC", "Europe/Berlin"]
FILL = """
INSERT INTO job_schedules (name, actor, cron, timezone)
SELECT 'job_' || lpad(g::text, 5, '0'), 'refresh_trace_summaries',
       (CAST(%(crons)s AS text[]))[1 + g %% %(ncrons)s],
       (CAST(%(zones)s AS text[]))[1 + (g / %(ncrons)s) %% 2]
  FROM generate_series(1, %(jobs)s) AS g;
INSERT INTO job_runs (job_name, trigger, state, created_at, enqueued_at, started_at,
                      finished_at, attempt, error)
SELECT 'job_' || lpad(g::text, 5, '0'), 'manual',
       CASE WHEN (g + k) %% 13 = 0 THEN 'discarded' WHEN (g + k) %% 17 = 0 THEN 'failed'
            ELSE 'succeeded' END,
       t, t, t, t + interval '2 s', 1,
       CASE WHEN (g + k) %% 13 = 0 OR (g + k) %% 17 = 0 THEN 'RuntimeError: bench' END
  FROM generate_series(1, %(jobs)s) AS g, generate_series(1, %(runs)s) AS k,
       LATERAL (SELECT now() - make_interval(mins => (%(runs)s - k) * 5) AS t) AS s;
ANALYZE job_schedules;
ANALYZE job_runs;
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(work, rounds: int) -> list[float]:
    work()  # warm: connections, the per-hour default stale_after of each schedule
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        out.append((time.perf_counter() - started) * 1000)
    return out


def health_rows(quick: bool) -> list[dict]:
    jobs, runs, rounds = (2_000, 10, 10) if quick else (10_000, 20, 30)
    rows = []
    with bench_settings("bench_alerts") as settings:
        conn = psycopg2.connect(dsn(settings.database_url))
        conn.autocommit = True
        with conn.cursor() as cur:
            params = {"crons": CRONS, "ncrons": len(CRONS), "zones": ZONES}
            cur.execute(FILL, {**params, "jobs": jobs, "runs": runs})
        conn.close()
        engine = make_engine(settings)
        try:
            with engine.connect() as c:
                stored = schedules.list_schedules(c)

            def jobs_list() -> None:  # what the jobs list and the API add for health
                with engine.connect() as c:  # to the schedules they read anyway
                    _, found = run_stats.healths(c, stored, every=True)
                assert len(found) >= jobs

            def scrape() -> None:
                job_metrics.exposition(job_metrics.snapshot(engine, settings))

            def api_body() -> None:  # what GET /api/jobs does after the request is parsed
                services.jobs_json(engine)

            def page_data() -> None:  # what the /jobs page reads before rendering (page 1)
                services.jobs_with_sparks(engine, JobsQuery())

            for name, work in (
                ("jobs list and API", jobs_list),
                ("/metrics scrape", scrape),
                ("whole GET /api/jobs body", api_body),
                ("whole /jobs page data with sparklines (first page)", page_data),
            ):
                ms = timed(work, rounds)
                rows.append(
                    {
                        "metric": f"health of {jobs:,} jobs, {name}",
                        "target": "p99 < 100 ms" if "whole" not in name else "(for scale)",
                        "measured": f"p50 {statistics.median(ms):.0f} ms, p99"
                        f" {percentile(ms, 0.99):.0f} ms (min {min(ms):.0f}, max"
                        f" {max(ms):.0f}; {rounds} rounds, {jobs * runs:,} runs; load average"
                        f" {os.getloadavg()[0]:.1f})",
                        "command": COMMAND,
                    }
                )
        finally:
            engine.dispose()
    return rows


def latency_rows(quick: bool) -> list[dict]:
    transitions = 10 if quick else 50
    receiver = Receiver().start()
    try:
        with bench_settings("bench_alerts_hook") as settings:
            env = {
                **os.environ,
                "DATABASE_URL": settings.database_url,
                "REDIS_URL": settings.redis_url,
                "SRJOBS_REDIS_NAMESPACE": settings.redis_namespace,
                "SRJOBS_ALERT_WEBHOOK_URLS": receiver.url,
                "LOG_FORMAT": "json",
            }
            with tempfile.TemporaryFile() as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "srjobs.cli", "scheduler"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                try:
                    seconds = _measure(settings, receiver, transitions)
                finally:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(20)
    finally:
        receiver.stop()
    return [
        {
            "metric": f"change of health to webhook received ({transitions} changes)",
            "target": "p99 < 2 s (contract: 10 s)",
            "measured": f"p50 {statistics.median(seconds) * 1000:.0f} ms, p99"
            f" {percentile(seconds, 0.99) * 1000:.0f} ms (min {min(seconds) * 1000:.0f},"
            f" max {max(seconds) * 1000:.0f})",
            "command": COMMAND,
        }
    ]


def _measure(settings, receiver: Receiver, transitions: int) -> list[float]:
    engine = make_engine(settings)
    out = []
    try:
        with engine.begin() as conn:  # the job exists from the migration's seed; make one
            conn.execute(
                text(
                    "INSERT INTO job_schedules (name, actor, cron) VALUES"
                    " ('bench_job', 'refresh_trace_summaries', '@every 1h')"
                )
            )
        deadline = time.monotonic() + 60
        while not _leading(engine) and time.monotonic() < deadline:
            time.sleep(0.1)  # waiting for the scheduler process to start and lead
        for k in range(transitions):
            state, error = (
                ("discarded", "RuntimeError: bench") if k % 2 == 0 else ("succeeded", None)
            )
            seen = len(receiver.requests)
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO job_runs (job_name, trigger, state, started_at,"
                        " finished_at, attempt, error) VALUES ('bench_job', 'manual', :s,"
                        " now(), now(), 1, :e)"
                    ),
                    {"s": state, "e": error},
                )
            committed = time.time()
            until = time.monotonic() + 15
            while len(receiver.requests) <= seen and time.monotonic() < until:
                time.sleep(0.002)  # polling the receiver: the measured wait itself
            if len(receiver.requests) > seen:
                out.append(receiver.requests[seen].at - committed)
    finally:
        engine.dispose()
    return out


def _leading(engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = 'srjobs-health-watch'"
                )
            ).scalar()
        )


def run(quick: bool = False) -> list[dict]:
    return health_rows(quick) + latency_rows(quick)


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))
