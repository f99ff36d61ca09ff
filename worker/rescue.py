"""Orphan rescue: runs left `running` by a worker process that died, and retries that never
came back, are closed so that no run stays active forever.

A run is orphaned when its worker process (`job_runs.worker`) has not heart-beaten in
`worker_nodes` for SRJOBS_WORKER_DEAD_SECONDS. It is marked `failed` and re-sent as its next
attempt when its job allows another attempt and takes no arguments; otherwise `discarded`.
A late copy of the old message is stale (older attempt) and is skipped by the middleware.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from dramatiq import Broker
from sqlalchemy import Engine

from shared import runs
from shared.dispatch import build_message
from worker import metrics
from worker.jobs import REGISTRY, JobSpec

logger = logging.getLogger(__name__)

# A `failed` run whose retry has not started this long after its backoff is given up.
RETRY_GRACE_SECONDS = 3600


@dataclass(frozen=True)
class Decision:
    state: str  # "failed" (re-sent) or "discarded"
    resend: bool
    error: str


def decide(orphan: runs.Orphan, spec: JobSpec | None) -> Decision:
    """What to do with an orphaned run: retry it as its next attempt, or give up."""
    seen = orphan.last_seen_at.isoformat() if orphan.last_seen_at else "never"
    lost = f"WorkerLost: worker {orphan.worker} stopped while running it (last seen {seen})"
    if orphan.cancel_requested_at is not None:
        return Decision("discarded", False, f"{runs.CANCELLED} while running; {lost}")
    if spec is None:
        return Decision("discarded", False, f"{lost}; job {orphan.job_name!r} is not declared")
    if not spec.resendable:
        return Decision("discarded", False, f"{lost}; it was sent with arguments")
    if orphan.attempt > spec.max_retries:
        return Decision("discarded", False, f"{lost}; retries exhausted")
    return Decision("failed", True, lost)


def stalled_after_seconds() -> float:
    """How long a `failed` run may wait for its retry: the longest backoff plus a grace."""
    longest = max((spec.max_backoff for spec in REGISTRY.values()), default=0)
    return longest / 1000 + RETRY_GRACE_SECONDS


def resend(broker: Broker, orphan: runs.Orphan, spec: JobSpec) -> None:
    """Send the run's next attempt (Dramatiq counts it as a retry)."""
    broker.enqueue(build_message(spec.actor_name, spec.queue, orphan.id, retries=orphan.attempt))


def rescue_orphans(engine: Engine, broker: Broker, dead_after_seconds: float) -> dict[str, int]:
    """Close every orphaned run and stalled retry; return counts by outcome."""
    counts = {"failed": 0, "discarded": 0}
    with engine.begin() as conn:
        orphans = runs.find_orphans(conn, dead_after_seconds)
    for orphan in orphans:
        spec = REGISTRY.get(orphan.job_name)
        decision = decide(orphan, spec)
        with engine.begin() as conn:
            if not runs.mark_lost(conn, orphan.id, orphan.attempt, decision.state, decision.error):
                continue  # it finished, or moved on, meanwhile
        counts[decision.state] += 1
        metrics.RESCUED.labels(orphan.job_name, decision.state).inc()
        logger.warning(
            "run %d of %s %s: %s",
            orphan.id,
            orphan.job_name,
            decision.state,
            decision.error,
            extra={
                "event": "run_rescued",
                "run_id": orphan.id,
                "job": orphan.job_name,
                "state": decision.state,
                "error": decision.error,
            },
        )
        if decision.resend and spec is not None:
            try:
                resend(broker, orphan, spec)
            except (redis.RedisError, OSError) as exc:
                logger.warning("could not re-send run %d: %s", orphan.id, exc)
    with engine.begin() as conn:
        stalled = runs.find_stalled_retries(conn, stalled_after_seconds())
    for run_id, job, attempt in stalled:
        error = "RetryLost: the retry of this run never started"
        with engine.begin() as conn:
            if runs.mark_lost(conn, run_id, attempt, "discarded", error):
                counts["discarded"] += 1
                metrics.RESCUED.labels(job, "discarded").inc()
                logger.warning("run %d of %s discarded: %s", run_id, job, error)
    return counts
