"""Admin memory under load: a real `srjobs webadmin` and 50 concurrent keep-alive clients.

Fills `job_runs` of a throwaway database (100 jobs, 100,000 runs; quick: 20,000), starts the
admin, and has 50 clients (one thread and connection each) request the jobs list, history and
run pages, HTML and API, for a fixed time while the admin's resident memory (the process and
any children) is sampled. The worker's RSS is measured by bench.worker_throughput.

    python -m bench.memory [--quick]
"""

from __future__ import annotations

import os
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

from bench.admin_latency import JOBS, fill, start_admin
from bench.support import cli, drop_database
from bench.worker_throughput import peak_rss, rss_mb
from shared.settings import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL

CLIENTS = 50
COMMAND = "python -m bench.memory"


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and its children (Linux /proc), in MB."""
    total = rss_mb(pid)
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            try:
                total += tree_rss_mb(int(child))
            except (OSError, RuntimeError):
                pass  # it exited meanwhile
    return total


def paths(rng: random.Random, rows: int) -> list[str]:
    """A mix of the admin's read pages and API calls."""
    out = []
    for _ in range(200):
        job = f"job_{rng.randrange(JOBS):03d}"
        out += [
            "/jobs",
            "/api/jobs",
            f"/jobs/{job}",
            f"/api/jobs/{job}/runs",
            f"/api/jobs/{job}/runs?before={rng.randrange(1, rows)}",
            f"/api/jobs/{job}/runs?state=failed",
        ]
    rng.shuffle(out)
    return out


def load(base: str, rows: int, seconds: float) -> tuple[int, int]:
    """`CLIENTS` clients request for `seconds`; (answers 200, other answers or errors)."""
    stop = time.monotonic() + seconds
    counts = [0, 0]
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        ok = bad = 0
        with httpx.Client(base_url=base, timeout=30) as http:
            for path in paths(rng, rows) * 100:
                if time.monotonic() > stop:
                    break
                try:
                    ok, bad = (ok + 1, bad) if http.get(path).status_code == 200 else (ok, bad + 1)
                except httpx.HTTPError:
                    bad += 1
        with lock:
            counts[0] += ok
            counts[1] += bad

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    return counts[0], counts[1]


def run(quick: bool) -> list[dict]:
    """Measure and return the benchmark rows."""
    rows, seconds = (20_000, 10.0) if quick else (100_000, 30.0)
    base_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    database_url = base_url.rsplit("/", 1)[0] + f"/srjobs_bench_memory_{uuid.uuid4().hex[:8]}"
    proc = None
    try:
        fill(database_url, rows)
        with tempfile.TemporaryFile() as log:
            proc, base = start_admin(database_url, redis_url, log)
            idle = tree_rss_mb(proc.pid)
            pid = proc.pid
            with peak_rss(lambda: tree_rss_mb(pid), every=0.2) as peak:
                ok, bad = load(base, rows, seconds)
            after = tree_rss_mb(proc.pid)
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        drop_database(database_url)
    la = os.getloadavg()[0]
    return [
        {
            "metric": f"admin RSS under {CLIENTS} concurrent clients ({rows:,} runs, {JOBS} jobs)",
            "target": "< 150 MB",
            "measured": (
                f"peak {peak[0]:.0f} MB (idle {idle:.0f} MB, {after:.0f} MB after the load);"
                f" {ok:,} answers in {seconds:.0f} s, {bad} errors; load average {la:.1f}"
            ),
            "peers": "-",
            "command": COMMAND + (" --quick" if quick else ""),
        }
    ]


if __name__ == "__main__":
    sys.exit(cli(__doc__, run, "20,000 runs, 10 s of load"))
