"""Scale: 10,000 schedules. Leader start to all scheduled (empty and full job store), one
full reconcile, the scheduler's resident memory."""

from __future__ import annotations

import sys

from bench.scheduler_harness import Lab, poll, row

COMMAND = "python -m bench.scheduler_scale"
SCHEDULES = 10_000


def _start(lab: Lab, name: str) -> tuple[float, float]:
    """Start a scheduler; (ms from winning the lock to ready, ms of the following reconcile)."""
    proc = lab.scheduler(name)
    ready = poll(lambda: proc.events("leader_ready"), 120, "the leader to be ready", 0.05)
    reconciled = poll(lambda: proc.events("schedules_reconciled"), 60, "a reconcile", 0.05)
    return ready[0]["start_ms"], reconciled[-1]["reconcile_ms"]


def run(quick: bool) -> list[dict]:
    count = SCHEDULES  # the target is about 10,000; quick mode measures it too (about 30 s)
    with Lab() as lab:
        lab.sql(
            "INSERT INTO job_schedules (name, actor, cron)"
            " SELECT 'bench_' || i, 'refresh_trace_summaries', '0 0 1 1 *'"
            " FROM generate_series(1, :n) AS i",
            n=count,
        )
        first_ms, _ = _start(lab, "scale-1")
        proc = lab.procs[-1]
        rss = proc.rss_mb()
        proc.stop()
        again_ms, reconcile_ms = _start(lab, "scale-2")
        rss = max(rss, lab.procs[-1].rss_mb())
    n = count + 1
    return [
        row(
            "scale: leader start to all scheduled",
            "< 2 s",
            f"{first_ms / 1000:.2f} s with an empty job store ({n} schedules, bulk insert);"
            f" {again_ms / 1000:.2f} s with all {n} stored",
            "APScheduler add_job one by one: ~24 s for 10,000",
            COMMAND,
        ),
        row(
            "scale: one full reconcile",
            "< 1 s",
            f"{reconcile_ms / 1000:.3f} s ({n} schedules, nothing to change)",
            "-",
            COMMAND,
        ),
        row("scale: scheduler RSS", "< 300 MB", f"{rss:.0f} MB ({n} schedules)", "-", COMMAND),
    ]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
