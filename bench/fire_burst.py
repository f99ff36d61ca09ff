"""Fire burst: 1,000 schedules `@every 1s` with a leader and a standby scheduler running.

Lag is `enqueued_at - scheduled_at` of the runs; where the leader's time goes comes from its
structured events: one `fire_pass` per scheduler pass (fires, record/store/pass ms) and one
`fires_sent` per outbox batch (runs, wait/send/mark ms).
"""

from __future__ import annotations

import statistics
import sys

from bench.fire_lag import add_schedules, measure
from bench.scheduler_harness import Lab, Proc, poll, row

COMMAND = "python -m bench.fire_burst"
PREFIX = "burst_"
SIZES = {False: (1000, 60), True: (200, 10)}  # quick -> (schedules, seconds)


def _median(events: list[dict], field: str) -> float:
    values = [float(e[field]) for e in events if field in e]
    return statistics.median(values) if values else float("nan")


def _slowest(sends: list[dict], n: int = 3) -> str:
    """The slowest slots' sends: how late the first send started, how long the sends took."""
    timed = [e for e in sends if e.get("late_ms") is not None]
    timed.sort(key=lambda e: float(e["late_ms"]) + float(e["send_ms"]), reverse=True)
    return ", ".join(
        f"lock check {float(e.get('fence_at_ms', 0)):.0f} ms from the slot,"
        f" sends started {float(e['late_ms']):.0f} ms after it and took {float(e['send_ms']):.0f}"
        for e in timed[:n]
    )


def breakdown(leader: Proc) -> str:
    """The leader's median pass: fires, pass/record/store ms; median send batch."""
    passes = [e for e in leader.events("fire_pass") if e.get("fires")]
    sends = leader.events("fires_sent")
    if not passes:
        return "no fire_pass events"
    return (
        f"leader per pass (median of {len(passes)}): {_median(passes, 'fires'):.0f} fires,"
        f" pass {_median(passes, 'pass_ms'):.1f} ms (due jobs read {_median(passes, 'due_ms'):.1f},"
        f" record {_median(passes, 'record_ms'):.1f},"
        f" store {_median(passes, 'store_ms'):.1f}), woke {_median(passes, 'woke_ms'):.1f} ms"
        f" and handed to the outbox"
        f" {_median(passes, 'handed_ms'):.1f} ms after the slot; outbox per batch"
        f" (median of {len(sends)}):"
        f" {_median(sends, 'runs'):.0f} runs, waited {_median(sends, 'wait_ms'):.1f} ms,"
        f" lock confirmed in {_median(sends, 'fence_ms'):.1f} ms,"
        f" first send {_median(sends, 'late_ms'):.1f} ms after the slot,"
        f" first chunk in Redis after {_median(sends, 'first_ms'):.1f} ms,"
        f" send {_median(sends, 'send_ms'):.1f} ms, mark {_median(sends, 'mark_ms'):.1f} ms;"
        f" {sum(1 for e in passes if float(e['handed_ms']) > 0)} passes handed their runs over"
        f" after the slot; slowest slots: {_slowest(sends)}; alerts the leader recorded"
        f" meanwhile: {len(leader.events('alert_recorded'))} (no worker runs: a job turns stale"
        f" 60 s after it was created)"
    )


def run(quick: bool) -> list[dict]:
    schedules, duration = SIZES[quick]
    with Lab() as lab:
        add_schedules(lab, PREFIX, schedules)
        leader = lab.scheduler("burst-1")
        poll(lambda: leader.events("leader_ready"), 60, "the leader", 0.05)
        standby = lab.scheduler("burst-2")
        poll(lambda: lab.waiting("burst-2"), 30, "the standby to wait for the lock", 0.05)
        fired = measure(lab, leader, PREFIX, schedules, duration)
        where = breakdown(leader)
        standby_fires = len(standby.events("fire_pass"))
    return [
        row(
            f"fire burst: {schedules} schedules due each second, leader + standby",
            "lag p99 < 100 ms, 0 missed, 0 doubled",
            f"{fired.describe()}; {schedules} schedules @every 1s for {duration} s;"
            f" {'meets' if fired.meets(100) else 'misses'} the target; {where};"
            f" standby passes {standby_fires}",
            "two real scheduler processes; lag = enqueued_at - scheduled_at",
            COMMAND + (" --quick" if quick else ""),
        )
    ]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
