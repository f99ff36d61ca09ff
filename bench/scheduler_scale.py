"""Scale: 10,000 and 100,000 schedules. Leader start to ready to fire (empty and full job
store), one full reconcile, the scheduler's resident memory, single edits in force.

Per size, one fresh database: the schedules are inserted in one statement, a first leader
starts on the empty job store and is stopped, a second starts on the full store; its
reconcile after the listener connects is the full reconcile; then `EDITS` edits, one per
transaction through `shared.schedules.update_schedule`, each awaited in force.
"""

from __future__ import annotations

import os
import sys

from bench.scheduler_harness import Lab, poll, row, summary, timed_edits

COMMAND = "python -m bench scheduler_scale"
SIZES = (10_000, 100_000)
EDITS = 100


def load_average() -> str:
    return f"load average {os.getloadavg()[0]:.1f}"


def _start(lab: Lab, name: str) -> tuple[float, float, float]:
    """Start a scheduler: (ms from winning the lock to ready, ms of the full reconcile after
    its listener connected, MB resident then)."""
    proc = lab.scheduler(name)
    ready = poll(lambda: proc.events("leader_ready"), 300, "the leader to be ready", 0.05)
    poll(lambda: proc.events("listener_connected"), 60, "the listener", 0.05)
    # The first reconcile is the start's; the listener asks for one more when it connects.
    reconciled = poll(
        lambda: (found := proc.events("schedules_reconciled")) and len(found) >= 2 and found,
        120,
        "the listener's reconcile",
        0.05,
    )
    return ready[0]["start_ms"], reconciled[-1]["reconcile_ms"], proc.rss_mb()


def _edits(lab: Lab, count: int) -> list[float]:
    leader = lab.procs[-1]
    # In steady state: after the health watch's first pass over every job.
    poll(lambda: leader.events("health_watch_ready"), 120, "the health watch's first pass", 0.1)
    names = [f"bench_{1 + i * 7919 % count}" for i in range(EDITS)]
    return timed_edits(lab, leader, names, 0.005)


def measure(count: int) -> list[dict]:
    with Lab() as lab:
        lab.sql(
            "INSERT INTO job_schedules (name, actor, cron)"
            " SELECT 'bench_' || i, 'refresh_trace_summaries', '0 0 1 1 *'"
            " FROM generate_series(1, :n) AS i",
            n=count,
        )
        first_ms, _, rss = _start(lab, "scale-1")
        load_first = load_average()
        lab.procs[-1].stop()
        again_ms, reconcile_ms, rss_again = _start(lab, "scale-2")
        load_again = load_average()
        edits = _edits(lab, count)
        load_edits = load_average()
        rss = max(rss, rss_again, lab.procs[-1].rss_mb())
    n = count + 1
    big = count >= 100_000
    return [
        row(
            f"scale: leader start to ready to fire, {n} schedules",
            "< 5 s" if big else "< 2 s",
            f"{first_ms / 1000:.2f} s with an empty job store ({load_first});"
            f" {again_ms / 1000:.2f} s with all stored ({load_again})",
            "APScheduler add_job one by one: ~24 s for 10,000",
            COMMAND,
        ),
        row(
            f"scale: one full reconcile, {n} schedules",
            "< 2 s" if big else "< 1 s",
            f"{reconcile_ms / 1000:.3f} s (nothing to change; {load_again})",
            "-",
            COMMAND,
        ),
        row(
            f"scale: scheduler RSS, {n} schedules",
            "< 400 MB" if big else "< 300 MB",
            f"{rss:.0f} MB",
            "-",
            COMMAND,
        ),
        row(
            f"scale: a single edit in force, {n} schedules",
            "p99 < 50 ms",
            f"{summary(edits)} ({EDITS} edits one at a time; {load_edits})",
            "-",
            COMMAND,
        ),
    ]


def run(quick: bool) -> list[dict]:
    sizes = SIZES[:1] if quick else SIZES
    return [r for count in sizes for r in measure(count)]


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:] if a.isdigit()] or list(SIZES)
    for count in sizes:
        for r in measure(count):
            print(r["metric"], "|", r["measured"])
