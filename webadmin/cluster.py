"""The cluster as the admin shows it: the scheduler leader and every scheduler and worker
process, judged by their heartbeats against the database's clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from shared import nodes
from shared.nodes import SchedulerNode
from shared.settings import Settings


@dataclass(frozen=True)
class SchedulerStatus:
    """The leader (None when no fresh node leads) and every known scheduler."""

    leader: str | None
    nodes: list[SchedulerNode]
    now: datetime
    stale_after: timedelta
    leader_row: SchedulerNode | None  # the newest node claiming to lead, even if stale

    def as_json(self) -> dict:
        """The `/api/scheduler` answer."""
        return {
            "leader": self.leader,
            "nodes": [
                {
                    "node": n.node,
                    "role": n.role,
                    "last_seen_at": n.last_seen_at.isoformat(),
                    "started_at": n.started_at.isoformat(),
                    "leader_since": n.leader_since.isoformat() if n.leader_since else None,
                    "stale": self.now - n.last_seen_at > self.stale_after,
                }
                for n in self.nodes
            ],
            "checked_at": self.now.isoformat(),
        }


def stale_after(settings: Settings) -> timedelta:
    """A node unseen for longer than this no longer counts (Settings.peer_stale_seconds)."""
    return timedelta(seconds=settings.peer_stale_seconds)


def current_leader(
    found: list[SchedulerNode], now: datetime, stale: timedelta
) -> SchedulerNode | None:
    """The freshest node that says it leads and was seen within `stale`; None otherwise."""
    leaders = [n for n in found if n.role == "leader" and now - n.last_seen_at <= stale]
    return max(leaders, key=lambda n: n.last_seen_at, default=None)


def scheduler_status(engine: Engine, settings: Settings) -> SchedulerStatus:
    """The leader as the peers' heartbeats show it, judged by the database's clock."""
    with engine.connect() as conn:
        now, found = nodes.scheduler_status(conn)
    stale = stale_after(settings)
    leader = current_leader(found, now, stale)
    claimed = max(
        (n for n in found if n.role == "leader"), key=lambda n: n.last_seen_at, default=None
    )
    return SchedulerStatus(leader.node if leader else None, found, now, stale, claimed)


@dataclass(frozen=True)
class NodesStatus:
    """Schedulers and worker processes with their last heartbeat."""

    scheduler: SchedulerStatus
    workers: list[nodes.WorkerNode]
    worker_dead_after: timedelta

    def live_workers(self) -> int:
        return sum(
            self.scheduler.now - w.last_seen_at <= self.worker_dead_after for w in self.workers
        )


def nodes_status(engine: Engine, settings: Settings) -> NodesStatus:
    """Every scheduler and worker process, judged by the database's clock."""
    status = scheduler_status(engine, settings)
    with engine.connect() as conn:
        workers = nodes.list_workers(conn)
    return NodesStatus(status, workers, timedelta(seconds=settings.worker_dead_seconds))
