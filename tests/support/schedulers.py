"""Scheduler processes for system tests (logging JSON events), lock holder lookups, job store."""

from __future__ import annotations

import pickle
from datetime import datetime

from sqlalchemy import Engine, text

from tests.support.procs import Service, Services

# Short lease and checks so that freezes and losses show within a couple of seconds.
FAST_ENV = {
    "LOG_FORMAT": "json",
    "SRJOBS_LEADER_LEASE_SECONDS": "2",
    "SRJOBS_LEADER_CHECK_SECONDS": "0.3",
}


def start_scheduler(services: Services, node: str, **env: str) -> Service:
    """A `srjobs scheduler` named `node`, logging JSON."""
    return services.start(node, "scheduler", env={**FAST_ENV, "NODE_NAME": node, **env})


def lock_holder(engine: Engine) -> str | None:
    """The node holding the leader lock in this database (from pg_locks), or None."""
    with engine.connect() as conn:
        name = conn.execute(
            text(
                "SELECT a.application_name FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid"
                " JOIN pg_database d ON d.oid = l.database"
                " WHERE l.locktype = 'advisory' AND l.granted"
                " AND d.datname = current_database()"
                " AND a.application_name LIKE 'srjobs-leader-lock:%'"
            )
        ).scalar()
    return name.split(":", 1)[1] if name else None


def set_cron(engine: Engine, cron: str, name: str = "refresh_trace_summaries") -> None:
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE job_schedules SET cron = :c WHERE name = :n"), {"c": cron, "n": name}
        )


def cron_slots(engine: Engine, name: str = "refresh_trace_summaries") -> list[datetime]:
    """Every cron run's slot of a job, oldest first (duplicates would show twice)."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT scheduled_at FROM job_runs"
                    " WHERE job_name = :n AND trigger = 'cron' ORDER BY scheduled_at"
                ),
                {"n": name},
            ).scalars()
        )


def stored_jobs(engine: Engine) -> dict[str, tuple[str, float | None]]:
    """APScheduler's job store as the leader left it: id -> (cron expression, next run)."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, next_run_time, job_state FROM apscheduler_jobs"))
        out = {}
        for row in rows:
            state = pickle.loads(row.job_state)  # noqa: S301  (our own test database)
            out[row.id] = (state["trigger"].schedule.expr, row.next_run_time)
        return out


def waiting_for_lock(engine: Engine, node: str) -> bool:
    """True while `node`'s lock session is blocked on the leader lock (it is a follower)."""
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE application_name = :app AND wait_event_type = 'Lock'"
                ),
                {"app": f"srjobs-leader-lock:{node}"},
            ).scalar()
        )


def assert_every_slot_once(slots: list[datetime], step: int = 1) -> None:
    """No slot has two runs and none is missing between the first and the last."""
    seconds = [int(s.timestamp()) for s in slots]
    assert len(seconds) == len(set(seconds)), f"duplicate slots: {seconds}"
    missing = sorted(set(range(seconds[0], seconds[-1] + 1, step)) - set(seconds))
    assert not missing, f"slots never fired: {missing}"


def prepared(engine: Engine) -> tuple[int, datetime] | None:
    """A run the leader recorded ahead of its slot (at least 50 ms away) and has not sent yet:
    its id and slot."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT id, scheduled_at FROM job_runs WHERE state = 'pending'"
                " AND scheduled_at > clock_timestamp() + interval '50 milliseconds'"
                " ORDER BY id LIMIT 1"
            )
        ).first()
    return (row.id, row.scheduled_at) if row else None
