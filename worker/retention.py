"""Retention: finished runs older than SRJOBS_RUN_RETENTION_DAYS (in short batches) and peers
gone for a day (`scheduler_nodes`, `worker_nodes`) are deleted by the daily prune job."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from shared import nodes, runs
from worker import metrics

logger = logging.getLogger(__name__)

# 20,000 rows a transaction: ~0.1-0.2 s each (docs/architecture.md, "Retention"), long enough
# to reach 100k rows/s, short enough that a worker finishing a run of a job whose stats row
# the batch holds waits little.
BATCH = 20_000
MAX_ROWS = 5_000_000  # one run deletes at most this many; the next run continues


def retention_cutoff(now: datetime, retention_days: int) -> datetime:
    """Runs that finished before this are past the retention."""
    return now - timedelta(days=retention_days)


def prune_runs(
    engine: Engine,
    retention_days: int,
    *,
    batch: int = BATCH,
    now: datetime | None = None,
    max_rows: int = MAX_ROWS,
) -> int:
    """Delete finished runs past the retention, oldest first, one short transaction per batch,
    each resuming where the one before ended."""
    cutoff = retention_cutoff(now or datetime.now(UTC), retention_days)
    total = 0
    after: datetime | None = None
    while total < max_rows:
        with engine.begin() as conn:
            pruned = runs.prune_finished(conn, cutoff, min(batch, max_rows - total), after)
        total += pruned.count
        metrics.PRUNED.inc(pruned.count)
        if pruned.count < batch or pruned.last_finished_at is None:
            break
        after = pruned.last_finished_at
    logger.info(
        "pruned %d finished run(s) older than %d day(s)",
        total,
        retention_days,
        extra={"event": "runs_pruned", "pruned": total, "retention_days": retention_days},
    )
    return total


def prune_peers(
    engine: Engine, older_than_seconds: float = nodes.FORGET_AFTER_SECONDS
) -> dict[str, int]:
    """Delete scheduler and worker rows not seen for `older_than_seconds` (a day)."""
    with engine.begin() as conn:
        pruned = {
            "schedulers": nodes.prune_schedulers(conn, older_than_seconds),
            "workers": nodes.prune_workers(conn, older_than_seconds),
        }
    logger.info("pruned peers gone for %.0fs: %s", older_than_seconds, pruned)
    return pruned
