"""Hot-reload latency: schedule edits committed one at a time; commit -> in force in the leader.

Each edit goes through `shared.schedules.update_schedule` (what the API's PATCH calls) in its
own transaction; the leader logs, per change, the change's time (from the table's trigger)
and the time the new trigger was in its job store.
"""

from __future__ import annotations

import sys

from bench.scheduler_harness import JOB, Lab, percentile, poll, row, summary
from shared.schedules import update_schedule

COMMAND = "python -m bench.scheduler_reload"
CRONS = ("*/5 * * * *", "@every 1m")


def run(quick: bool) -> list[dict]:
    edits = 50 if quick else 200
    with Lab() as lab:
        leader = lab.scheduler("reload-1")
        poll(lambda: leader.events("listener_connected"), 60, "the leader's listener", 0.05)
        for i in range(edits):
            with lab.engine.begin() as conn:
                update_schedule(conn, JOB, cron=CRONS[i % 2])
            poll(
                lambda n=i + 1: len(leader.events("schedule_applied")) >= n,
                10,
                "the change to be applied",
                0.002,
            )
        latencies = [e["reload_ms"] for e in leader.events("schedule_applied")]
    ok = percentile(latencies, 99) < 20
    return [
        row(
            "hot-reload latency (commit -> in force in the leader)",
            "p99 < 20 ms",
            f"{summary(latencies)}; {'meets' if ok else 'misses'} the target;"
            f" {edits} edits via update_schedule, one per transaction",
            "django-celery-beat polls up to 5 s; Chancy 60 s; RedBeat up to 300 s",
            COMMAND,
        )
    ]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
