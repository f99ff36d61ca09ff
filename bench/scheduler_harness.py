"""What the scheduler benchmarks share: a throwaway database, scheduler processes, their logs.

Everything a benchmark creates (its database, its Redis keys, its processes) is removed when
the `Lab` context ends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, text

from bench.support import drop_database, flush_namespace
from shared.db import make_engine
from shared.migrate import migrate
from shared.schedules import ScheduleSeed, update_schedule
from shared.settings import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, Settings

JOB = "refresh_trace_summaries"
SEED = ScheduleSeed(name=JOB, actor=JOB, cron="0 0 1 1 *")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def summary(values: list[float], unit: str = "ms") -> str:
    """`median x, p99 y, max z (n runs)`."""
    if not values:
        return "no samples"
    return (
        f"median {statistics.median(values):.1f} {unit}, p99 {percentile(values, 99):.1f} {unit},"
        f" max {max(values):.1f} {unit} (n={len(values)})"
    )


def row(metric: str, target: str, measured: str, peers: str, command: str) -> dict:
    return {
        "metric": metric,
        "target": target,
        "measured": measured,
        "peers": peers,
        "command": command,
    }


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def events(self, event: str) -> list[dict]:
        """The process's JSON log records of one structured event (`extra={"event": ...}`)."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("event") == event:
                    out.append(record)
        return out

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(10)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def record_time(record: dict) -> float:
    return datetime.fromisoformat(record["ts"]).timestamp()


@dataclass
class Lab:
    """A fresh migrated database and a Redis namespace; scheduler processes on demand.

    With `database` the lab uses (creating it if missing) and keeps that database instead.
    """

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    procs: list[Proc] = field(default_factory=list)
    database: str | None = None

    def __enter__(self) -> Lab:
        base = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        self.db_name = self.database or f"srjobs_bench_{self.tag}"
        self.settings = Settings(
            database_url=base.rsplit("/", 1)[0] + f"/{self.db_name}",
            redis_url=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL,
            redis_namespace=f"srjobs-bench-{self.tag}",
        )
        migrate(self.settings, [SEED])
        self.engine: Engine = make_engine(self.settings)
        self.logdir = Path(tempfile.mkdtemp(prefix="srjobs-bench-"))
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        shutil.rmtree(self.logdir, ignore_errors=True)
        self.engine.dispose()
        if self.database is None:
            drop_database(self.settings.database_url)
        flush_namespace(self.settings.redis_url, self.settings.redis_namespace)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.settings.database_url,
            "REDIS_URL": self.settings.redis_url,
            "SRJOBS_REDIS_NAMESPACE": self.settings.redis_namespace,
            "LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }

    def scheduler(self, name: str, **extra: str) -> Proc:
        return self.service(name, "scheduler", **extra)

    def service(self, name: str, *args: str, **extra: str) -> Proc:
        """`srjobs <args>` named `name` (its NODE_NAME), logging JSON to the lab's folder."""
        log_path = self.logdir / f"{name}.log"
        with log_path.open("wb") as handle:
            popen = subprocess.Popen(
                [sys.executable, "-m", "srjobs.cli", *args],
                env=self.env(NODE_NAME=name, **extra),
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def sql(self, statement: str, **params: object):
        with self.engine.begin() as conn:
            return conn.execute(text(statement), params)

    def lock_holder(self) -> str | None:
        name = self.sql(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory'"
            " AND l.granted AND d.datname = current_database()"
            " AND a.application_name LIKE 'srjobs-leader-lock:%'"
        ).scalar()
        return name.split(":", 1)[1] if name else None

    def waiting(self, node: str) -> bool:
        return bool(
            self.sql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = :a"
                " AND wait_event_type = 'Lock'",
                a=f"srjobs-leader-lock:{node}",
            ).scalar()
        )


def poll(check, timeout: float, what: str, interval: float = 0.01):
    """Call `check` until truthy; raise after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


EDIT_CRONS = ("*/5 * * * *", "@every 1m")


def timed_edits(lab: Lab, leader: Proc, names: list[str], interval: float) -> list[float]:
    """Edit each named schedule in its own transaction (the API's PATCH path), awaiting each in
    force in the leader; every change's commit-to-applied latency in ms, from its log."""
    for i, name in enumerate(names):
        with lab.engine.begin() as conn:
            update_schedule(conn, name, cron=EDIT_CRONS[i % 2])
        poll(
            lambda n=i + 1: len(leader.events("schedule_applied")) >= n,
            10,
            "the edit to be applied",
            interval,
        )
    return [e["reload_ms"] for e in leader.events("schedule_applied")]
