"""Data access for `audit_log`: who changed which job, when, from what to what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from shared.tables import audit_log

ACTIONS = (
    "schedule.update",
    "schedule.create",
    "schedule.delete",
    "run.manual",
    "run.cancel",
    "run.retry",
)


@dataclass(frozen=True)
class AuditEntry:
    """One row of `audit_log`."""

    id: int
    at: datetime
    who: str
    action: str
    job_name: str
    old_values: dict | None
    new_values: dict | None

    def as_json(self) -> dict:
        """JSON-ready dict; times in ISO 8601 with offset."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "who": self.who,
            "action": self.action,
            "job_name": self.job_name,
            "old_values": self.old_values,
            "new_values": self.new_values,
        }


def record(
    conn: Connection,
    *,
    who: str,
    action: str,
    job_name: str,
    old_values: dict | None = None,
    new_values: dict | None = None,
) -> AuditEntry:
    """Append an entry in the caller's transaction, so it commits with the change it records."""
    assert action in ACTIONS
    row = conn.execute(
        insert(audit_log)
        .values(
            who=who[:200],
            action=action,
            job_name=job_name,
            old_values=old_values,
            new_values=new_values,
        )
        .returning(*audit_log.c)
    ).one()
    return AuditEntry(**row._mapping)


def list_for_job(conn: Connection, job_name: str, *, limit: int = 20) -> list[AuditEntry]:
    """A job's entries, newest first."""
    rows = conn.execute(
        select(audit_log)
        .where(audit_log.c.job_name == job_name)
        .order_by(audit_log.c.id.desc())
        .limit(limit)
    )
    return [AuditEntry(**r._mapping) for r in rows]
