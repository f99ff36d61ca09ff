"""Failover: kill -9, SIGSTOP and SIGTERM of the leader among three schedulers; the time
from the signal to a follower being ready to fire (its `leading: ready to fire` event)."""

from __future__ import annotations

import signal
import sys
import time

from bench.scheduler_harness import JOB, Lab, Proc, poll, record_time, row, summary

COMMAND = "python -m bench.scheduler_failover"
PEERS_CRASH = "Oban lease 30-60 s; Chancy 60-120 s; RedBeat lock 1500 s"


class Cluster:
    """Three schedulers on one database; replaces each one that is killed or stopped."""

    def __init__(self, lab: Lab, lease: str | None) -> None:
        self.lab = lab
        self.env = {"SRJOBS_LEADER_LEASE_SECONDS": lease} if lease else {}
        self.count = 0
        self.alive: list[Proc] = []
        for _ in range(3):
            self.add()

    def add(self) -> Proc:
        self.count += 1
        proc = self.lab.scheduler(f"node-{self.count}", **self.env)
        if self.count == 1:
            poll(lambda: self.lab.lock_holder() == proc.name, 60, "a first leader", 0.05)
        else:
            poll(lambda: self.lab.waiting(proc.name), 60, f"{proc.name} to follow", 0.05)
        self.alive.append(proc)
        return proc

    def leader(self) -> Proc:
        name = poll(self.lab.lock_holder, 30, "a leader", 0.02)
        return next(p for p in self.alive if p.name == name)

    def handover(self, sig: int, timeout: float = 30) -> tuple[float, Proc, Proc]:
        """Signal the leader; (ms until a follower is ready to fire, old leader, new leader)."""
        old = self.leader()
        others = [p for p in self.alive if p is not old]
        before = {p.name: len(p.events("leader_ready")) for p in others}

        def new_leader():
            return next((p for p in others if len(p.events("leader_ready")) > before[p.name]), None)

        sent = time.time()
        old.signal(sig)
        new = poll(new_leader, timeout, "a new leader", 0.01)
        ready = new.events("leader_ready")[-1]["leader_ready_at"]
        return (ready - sent) * 1000, old, new


def crash_and_term(lab: Lab, sig: int, rounds: int) -> list[float]:
    cluster = Cluster(lab, None)
    times = []
    for _ in range(rounds):
        took, old, _new = cluster.handover(sig)
        times.append(took)
        old.popen.wait(15)
        cluster.alive.remove(old)
        cluster.add()
    return times


def freeze(lab: Lab, rounds: int) -> tuple[list[float], int]:
    lab.sql("UPDATE job_schedules SET cron = '@every 1s' WHERE name = :n", n=JOB)
    cluster = Cluster(lab, None)  # the default lease
    times, late_fires = [], 0
    for _ in range(rounds):
        stopped = time.time()
        took, old, _new = cluster.handover(signal.SIGSTOP, timeout=30)
        times.append(took)
        steps = len(old.events("leader_stepped_down"))
        old.signal(signal.SIGCONT)
        poll(
            lambda old=old, steps=steps: len(old.events("leader_stepped_down")) > steps,
            30,
            "the old leader to step down",
            0.05,
        )
        late_fires += sum(record_time(e) > stopped for e in old.events("run_fired"))
    return times, late_fires


def run(quick: bool) -> list[dict]:
    rounds, freezes = (5, 1) if quick else (20, 5)
    with Lab() as lab:
        crash = crash_and_term(lab, signal.SIGKILL, rounds)
    with Lab() as lab:
        term = crash_and_term(lab, signal.SIGTERM, rounds)
    with Lab() as lab:
        frozen, late = freeze(lab, freezes)
    return [
        row(
            "failover, crash (kill -9 -> new leader ready to fire)",
            "max < 250 ms",
            f"{summary(crash)}; {'meets' if max(crash) < 250 else 'misses'} the target",
            PEERS_CRASH,
            COMMAND,
        ),
        row(
            "failover, freeze (SIGSTOP -> new leader ready; old leader's fires after SIGCONT)",
            "max < 6 s with the default 5 s lease; zero fires",
            f"{summary([t / 1000 for t in frozen], 's')}; {late} fires from the old leader",
            "dramatiq-crontab 15 s; a plain advisory lock: never",
            COMMAND,
        ),
        row(
            "handover, SIGTERM (-> new leader ready to fire)",
            "max < 250 ms",
            f"{summary(term)}; {'meets' if max(term) < 250 else 'misses'} the target",
            "Oban: immediate on clean stop",
            COMMAND,
        ),
    ]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
