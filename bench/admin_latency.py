"""Admin latency with a large run history: the history API and page, and the jobs list.

Fills `job_runs` of a throwaway database with 1,000,000 rows over 100 jobs (quick: 100,000),
starts a real `srjobs webadmin`, and times sequential requests from one keep-alive client.
Also checks that the history queries use their indexes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import httpx
import psycopg2

from bench.support import cli, drop_database
from shared.migrate import migrate
from shared.schedules import ScheduleSeed
from shared.settings import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, Settings
from srjobs.dev import free_port

JOBS = 100
TARGET = "p99 < 50 ms"
COMMAND = "python -m bench.admin_latency"

FILL = """
INSERT INTO job_runs (job_name, trigger, state, scheduled_at, created_at, enqueued_at,
                      started_at, finished_at, attempt, node, error)
SELECT 'job_' || lpad((g %% %(jobs)s)::text, 3, '0'),
       'cron',
       CASE WHEN g %% 97 = 0 THEN 'failed' WHEN g %% 89 = 0 THEN 'discarded'
            ELSE 'succeeded' END,
       t, t, t + interval '20 ms', t + interval '30 ms', t + interval '1 s', 1, 'bench-worker',
       CASE WHEN g %% 97 = 0 THEN 'TimeoutError: bench' END
  FROM generate_series(1, %(rows)s) AS g,
       LATERAL (SELECT now() - make_interval(secs => (%(rows)s - g) * 10) AS t) AS s
"""

PLANS = {
    "history": "SELECT id FROM job_runs WHERE job_name = 'job_042' ORDER BY id DESC LIMIT 50",
    "history, older page": (
        "SELECT id FROM job_runs WHERE job_name = 'job_042' AND id < %(mid)s"
        " ORDER BY id DESC LIMIT 50"
    ),
    "history, one state": (
        "SELECT id FROM job_runs WHERE job_name = 'job_042' AND state = 'failed'"
        " ORDER BY id DESC LIMIT 50"
    ),
    "runs, one state": "SELECT id FROM job_runs WHERE state = 'failed' ORDER BY id DESC LIMIT 50",
    "last run per job": (
        "SELECT r.id FROM unnest(ARRAY['job_001', 'job_042']) AS j(name) CROSS JOIN LATERAL"
        " (SELECT id FROM job_runs WHERE job_name = j.name ORDER BY id DESC LIMIT 1) AS r"
    ),
}


def fill(database_url: str, rows: int) -> None:
    """Migrate, declare 100 jobs and insert `rows` finished runs spread over them."""
    seeds = [
        ScheduleSeed(name=f"job_{i:03d}", actor="refresh_trace_summaries", cron="*/5 * * * *")
        for i in range(JOBS)
    ]
    migrate(Settings(database_url=database_url), seeds)
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(FILL, {"jobs": JOBS, "rows": rows})
            cur.execute("VACUUM ANALYZE job_runs")
    finally:
        conn.close()


def plans(database_url: str) -> dict[str, str]:
    """The index (or scan) each history query's plan uses."""
    conn = psycopg2.connect(database_url)
    found = {}
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT max(id) / 2 FROM job_runs")
            mid = cur.fetchone()[0]
            for name, query in PLANS.items():
                cur.execute("EXPLAIN (FORMAT JSON) " + query, {"mid": mid})
                plan = json.dumps(cur.fetchone()[0])
                indexes = sorted(set(_index_names(plan)))
                found[name] = ", ".join(indexes) if indexes else "SEQ SCAN"
    finally:
        conn.close()
    return found


def _index_names(plan_json: str) -> list[str]:
    names = []

    def walk(node):
        if isinstance(node, dict):
            if "Index Name" in node:
                names.append(node["Index Name"])
            if node.get("Node Type") == "Seq Scan":
                names.append("SEQ SCAN")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(plan_json))
    return names


def start_admin(database_url: str, redis_url: str, logfile) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    env.pop("ADMIN_PASSWORD", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "srjobs.cli", "webadmin", "--port", str(port)],
        env=env,
        stdout=logfile,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the admin exited at start")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the admin did not answer within 30 s")


def timed(client: httpx.Client, paths: list[str]) -> list[float]:
    """Milliseconds per request, in order."""
    out = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path)
        out.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(quick: bool) -> list[dict]:
    """Measure and return the benchmark rows."""
    rows = 100_000 if quick else 1_000_000
    requests = 200 if quick else 500
    base_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    name = f"srjobs_bench_admin_{uuid.uuid4().hex[:8]}"
    database_url = base_url.rsplit("/", 1)[0] + f"/{name}"
    rng = random.Random(7)
    proc = None
    try:
        fill(database_url, rows)
        used = plans(database_url)
        with tempfile.TemporaryFile() as log:
            proc, base = start_admin(database_url, redis_url, log)
            with httpx.Client(base_url=base, timeout=10) as client:
                jobs = [f"job_{rng.randrange(JOBS):03d}" for _ in range(requests)]
                timed(client, [f"/api/jobs/{j}/runs" for j in jobs[:20]])  # warm up
                timed(client, [f"/jobs/{j}" for j in jobs[:20]])
                mid = rows // 2
                cases = {
                    "history API (50 newest)": [f"/api/jobs/{j}/runs" for j in jobs],
                    "history API (older page)": [
                        f"/api/jobs/{j}/runs?before={mid + rng.randrange(mid)}" for j in jobs
                    ],
                    "history API (state=failed)": [
                        f"/api/jobs/{j}/runs?state=failed" for j in jobs
                    ],
                    "history page": [f"/jobs/{j}" for j in jobs],
                    "jobs list page": ["/jobs"] * requests,
                    "jobs list API": ["/api/jobs"] * requests,
                }
                results = {label: timed(client, paths) for label, paths in cases.items()}
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        drop_database(database_url)
    out = []
    notes = {
        "history API (state=failed)": f"plan: {used['history, one state']}",
        "jobs list page": f"plan: {used['last run per job']}",
        "jobs list API": f"plan: {used['last run per job']}",
    }
    default_note = f"plans: {used['history']}; keyset {used['history, older page']}"
    for label, values in results.items():
        out.append(
            {
                "metric": f"admin latency: {label}, {rows:,} runs over {JOBS} jobs",
                "target": TARGET,
                "measured": (
                    f"p50 {statistics.median(values):.1f} ms, p99 {percentile(values, 0.99):.1f} ms"
                    f" ({len(values)} requests; {notes.get(label, default_note)})"
                ),
                "peers": "-",
                "command": COMMAND + (" --quick" if quick else ""),
            }
        )
    return out


if __name__ == "__main__":
    sys.exit(cli(__doc__, run, "100,000 runs, fewer requests"))
