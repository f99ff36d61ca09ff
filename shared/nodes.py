"""Data access for `scheduler_nodes` and `worker_nodes` (peer status, heartbeats)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert

from shared.tables import scheduler_nodes, worker_nodes

# Peers (schedulers, worker processes) gone for longer than this are deleted by the daily
# prune job (worker/retention.py); a peer that stops cleanly deletes its own row at once.
FORGET_AFTER_SECONDS = 86_400.0


@dataclass(frozen=True)
class SchedulerNode:
    node: str
    role: str
    last_seen_at: datetime
    started_at: datetime
    leader_since: datetime | None


def beat_scheduler(conn: Connection, node: str, role: str) -> None:
    """Record that `node` is alive in `role` (leader or follower)."""
    leader_since = func.now() if role == "leader" else None
    stmt = insert(scheduler_nodes).values(
        node=node, role=role, last_seen_at=func.now(), leader_since=leader_since
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["node"],
            set_={
                "role": stmt.excluded.role,
                "last_seen_at": func.now(),
                "leader_since": func.coalesce(
                    text(
                        "CASE WHEN excluded.role = 'leader' THEN scheduler_nodes.leader_since END"
                    ),
                    stmt.excluded.leader_since,
                ),
            },
        )
    )


def forget_scheduler(conn: Connection, node: str) -> None:
    """Remove a node that stopped cleanly."""
    conn.execute(delete(scheduler_nodes).where(scheduler_nodes.c.node == node))


def _older_than(seconds: float) -> ColumnElement:
    return func.now() - func.make_interval(0, 0, 0, 0, 0, 0, seconds)


def prune_schedulers(conn: Connection, older_than_seconds: float) -> int:
    """Drop scheduler rows not seen for `older_than_seconds`; return how many."""
    result = conn.execute(
        delete(scheduler_nodes).where(
            scheduler_nodes.c.last_seen_at < _older_than(older_than_seconds)
        )
    )
    return result.rowcount


def list_schedulers(conn: Connection) -> list[SchedulerNode]:
    """Every known scheduler, leader first, then by name."""
    rows = conn.execute(
        select(scheduler_nodes).order_by(
            (scheduler_nodes.c.role == "leader").desc(), scheduler_nodes.c.node
        )
    )
    return [SchedulerNode(**r._mapping) for r in rows]


def beat_worker(conn: Connection, worker: str, node: str) -> None:
    """Record that the worker process `worker` (of NODE_NAME `node`) is alive."""
    stmt = insert(worker_nodes).values(worker=worker, node=node, last_seen_at=func.now())
    conn.execute(
        stmt.on_conflict_do_update(index_elements=["worker"], set_={"last_seen_at": func.now()})
    )


def scheduler_status(conn: Connection) -> tuple[datetime, list[SchedulerNode]]:
    """The database's clock and every known scheduler, read together (no clock skew)."""
    now = conn.execute(select(func.now())).scalar_one()
    return now, list_schedulers(conn)


def forget_worker(conn: Connection, worker: str) -> None:
    """Remove a worker process that stopped cleanly."""
    conn.execute(delete(worker_nodes).where(worker_nodes.c.worker == worker))


def prune_workers(conn: Connection, older_than_seconds: float) -> int:
    """Drop worker rows not seen for `older_than_seconds`; return how many."""
    result = conn.execute(
        delete(worker_nodes).where(worker_nodes.c.last_seen_at < _older_than(older_than_seconds))
    )
    return result.rowcount


@dataclass(frozen=True)
class WorkerNode:
    worker: str  # node/pid/boot
    node: str
    started_at: datetime
    last_seen_at: datetime


def list_workers(conn: Connection) -> list[WorkerNode]:
    """Every worker process with a heartbeat row, newest heartbeat first."""
    rows = conn.execute(
        select(worker_nodes).order_by(worker_nodes.c.last_seen_at.desc(), worker_nodes.c.worker)
    )
    return [WorkerNode(**r._mapping) for r in rows]
