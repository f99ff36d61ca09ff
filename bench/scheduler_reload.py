"""Hot-reload latency: schedule edits committed one at a time; commit -> in force in the leader.

Each edit goes through `shared.schedules.update_schedule` (what the API's PATCH calls) in its
own transaction; the leader logs, per change, the change's time (from the table's trigger)
and the time the new trigger was in its job store.
"""

from __future__ import annotations

import sys

from bench.scheduler_harness import JOB, Lab, percentile, poll, row, summary, timed_edits

COMMAND = "python -m bench.scheduler_reload"


def run(quick: bool) -> list[dict]:
    edits = 50 if quick else 200
    with Lab() as lab:
        leader = lab.scheduler("reload-1")
        poll(lambda: leader.events("listener_connected"), 60, "the leader's listener", 0.05)
        latencies = timed_edits(lab, leader, [JOB] * edits, 0.002)
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
