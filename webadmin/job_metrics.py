"""Per-job health series of the admin's /metrics, computed at scrape from one query.

`srjobs_job_health{job_name, health}` carries one sample per health value (1 for the current
one, 0 otherwise), so that an alert rule can match `== 1` and a dashboard can count jobs per
health. Besides the jobs: live worker processes, fresh schedulers and alerts still retried,
so that "no live worker" needs no scrape of every worker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Engine

from shared import alerts, nodes, run_stats
from shared.freshness import HEALTHS
from shared.settings import Settings

NAMES = (
    "srjobs_job_last_success_timestamp_seconds",
    "srjobs_job_consecutive_failures",
    "srjobs_job_health",
    "srjobs_workers_alive",
    "srjobs_schedulers_alive",
    "srjobs_alerts_undelivered",
)


@dataclass(frozen=True)
class Snapshot:
    jobs: list[tuple[str, str, int | None, int]]  # see shared.run_stats.job_healths
    workers_alive: int
    schedulers_alive: int
    alerts_undelivered: int


def snapshot(engine: Engine, settings: Settings) -> Snapshot:
    """Read everything the series need, judged by the database's clock."""
    with engine.connect() as conn:
        now, found = run_stats.job_healths(conn)
        workers = nodes.list_workers(conn)
        schedulers = nodes.list_schedulers(conn)
        undelivered = alerts.count_undelivered(conn)
    fresh_for = settings.peer_stale_seconds
    return Snapshot(
        jobs=found,
        workers_alive=sum(
            (now - w.last_seen_at).total_seconds() <= settings.worker_dead_seconds for w in workers
        ),
        schedulers_alive=sum(
            (now - s.last_seen_at).total_seconds() <= fresh_for for s in schedulers
        ),
        alerts_undelivered=undelivered,
    )


HELP = {
    NAMES[0]: "When the job's last successful run finished (unix seconds)",
    NAMES[1]: "Failed runs since the job's last success (cancelled ones excepted)",
    NAMES[2]: "1 for the job's current health, 0 for the others",
    NAMES[3]: "Worker processes with a recent heartbeat",
    NAMES[4]: "Schedulers with a recent heartbeat",
    NAMES[5]: "Alerts not yet accepted by every webhook",
}


NEEDS_ESCAPE = re.compile(r'[\\\n"]')
MICROS = run_stats.MICROS


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _head(name: str) -> str:
    return f"# HELP {name} {HELP[name]}\n# TYPE {name} gauge\n"


# Per health, a job's srjobs_job_health samples with `%(job)s` for its label: one substitution
# per job instead of formatting five lines.
HEALTH_LINES = {
    health: "".join(
        f'{NAMES[2]}{{job_name="%(job)s",health="{value}"}} {int(value == health)}\n'
        for value in HEALTHS
    )
    for health in HEALTHS
}


def exposition(snap: Snapshot) -> bytes:
    """The Prometheus text format of a snapshot, written directly (tens of thousands of
    samples at 10,000 jobs: the generic client formats them several times slower)."""
    parts_last, parts_failures, parts_health = ([_head(n)] for n in NAMES[:3])
    for name, health, success_us, failures in snap.jobs:
        job = _label(name) if NEEDS_ESCAPE.search(name) else name
        if success_us is not None:
            parts_last.append(f'{NAMES[0]}{{job_name="{job}"}} {success_us / MICROS}\n')
        parts_failures.append(f'{NAMES[1]}{{job_name="{job}"}} {failures}\n')
        parts_health.append(HEALTH_LINES[health] % {"job": job})
    totals = [
        f"{_head(name)}{name} {value}\n"
        for name, value in (
            (NAMES[3], snap.workers_alive),
            (NAMES[4], snap.schedulers_alive),
            (NAMES[5], snap.alerts_undelivered),
        )
    ]
    return "".join(parts_last + parts_failures + parts_health + totals).encode()
