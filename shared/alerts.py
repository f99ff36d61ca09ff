"""Data access for `alerts` and `job_alert_state`: the only module that reads or writes them.

A change of health is recorded by one statement that moves the job's alerted state from the
value the caller saw and inserts the alert only when that move happened: two evaluators (a
leader and one that wakes from a freeze) cannot both record it, and a failure before the
commit records neither.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select, text, update

from shared.tables import alerts, job_alert_state


@dataclass(frozen=True)
class Alert:
    """One row of `alerts`."""

    id: int
    job_name: str
    event: str
    health: str
    created_at: datetime
    delivered_at: datetime | None
    attempts: int
    last_error: str | None
    details: dict
    next_attempt_at: datetime | None
    deliveries: dict

    def as_json(self) -> dict:
        """The API's view: the contract's columns, the delivery state per target."""
        return {
            "id": self.id,
            "job_name": self.job_name,
            "event": self.event,
            "health": self.health,
            "created_at": self.created_at.isoformat(),
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
            "deliveries": list(self.deliveries.values()),
        }


def _alert(row: object) -> Alert:
    return Alert(**row._mapping)  # type: ignore[attr-defined]


RECORD = text(
    """
    WITH moved AS (
        INSERT INTO job_alert_state AS s (job_name, health) VALUES (:job, :to)
        ON CONFLICT (job_name) DO UPDATE SET health = excluded.health, changed_at = now()
         WHERE s.health = :expected
        RETURNING job_name)
    INSERT INTO alerts (job_name, event, health, details)
    SELECT :job, :event, :health, CAST(:details AS jsonb) FROM moved
    RETURNING id
    """
)


def record_transition(
    conn: Connection, job: str, expected: str, to: str, event: str, health: str, details: dict
) -> int | None:
    """Move the job's alerted state `expected` -> `to` and record the alert; its id, or None
    when the state was not `expected` any more (someone else recorded it)."""
    return conn.execute(
        RECORD,
        {
            "job": job,
            "expected": expected,
            "to": to,
            "event": event,
            "health": health,
            "details": json.dumps(details),
        },
    ).scalar()


def alerted_states(conn: Connection) -> dict[str, str]:
    """Every job's last alerted health (jobs without a row are `ok`)."""
    rows = conn.execute(select(job_alert_state.c.job_name, job_alert_state.c.health))
    return {r.job_name: r.health for r in rows}


def due(conn: Connection, limit: int) -> list[Alert]:
    """Undelivered alerts whose next attempt is due, oldest first."""
    c = alerts.c
    rows = conn.execute(
        select(alerts)
        .where(c.delivered_at.is_(None), c.next_attempt_at <= func.now())
        .order_by(c.id)
        .limit(limit)
    )
    return [_alert(r) for r in rows]


def seconds_until_due(conn: Connection) -> float | None:
    """Seconds until the next undelivered alert is due, by the database's clock (None:
    nothing to send)."""
    c = alerts.c
    value = conn.execute(
        select(func.extract("epoch", func.min(c.next_attempt_at) - func.now())).where(
            c.delivered_at.is_(None)
        )
    ).scalar()
    return None if value is None else float(value)


def record_attempt(
    conn: Connection,
    alert_id: int,
    deliveries: dict,
    *,
    delivered: bool,
    last_error: str | None,
    retry_in_seconds: float | None,
) -> None:
    """Store one delivery round: per-target state, and either delivered, a next attempt, or
    given up (`retry_in_seconds` None while undelivered)."""
    next_at = (
        None
        if delivered or retry_in_seconds is None
        else func.now() + text("make_interval(secs => :delay)").bindparams(delay=retry_in_seconds)
    )
    conn.execute(
        update(alerts)
        .where(alerts.c.id == alert_id, alerts.c.delivered_at.is_(None))
        .values(
            attempts=alerts.c.attempts + 1,
            deliveries=deliveries,
            last_error=last_error,
            delivered_at=func.now() if delivered else None,
            next_attempt_at=next_at,
        )
    )


def list_alerts(conn: Connection, limit: int = 50, job: str | None = None) -> list[Alert]:
    """The newest alerts first, optionally of one job."""
    stmt = select(alerts).order_by(alerts.c.id.desc()).limit(limit)
    if job is not None:
        stmt = stmt.where(alerts.c.job_name == job)
    return [_alert(r) for r in conn.execute(stmt)]


def count_undelivered(conn: Connection) -> int:
    """Alerts still being retried (not accepted by every target, not given up)."""
    c = alerts.c
    return conn.execute(
        select(func.count())
        .select_from(alerts)
        .where(c.delivered_at.is_(None), c.next_attempt_at.is_not(None))
    ).scalar_one()
