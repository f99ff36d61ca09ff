"""Retention: finished runs older than SRJOBS_RUN_RETENTION_DAYS (in short batches) and peers
gone for a day (`scheduler_nodes`, `worker_nodes`) are deleted by the daily prune job."""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from shared import nodes, runs
from worker import metrics

logger = logging.getLogger(__name__)

BATCH = 5_000
MAX_BATCHES = 200  # one run deletes at most 1M rows; the next run continues


def prune_runs(engine: Engine, retention_days: int, *, batch: int = BATCH) -> int:
    """Delete finished runs past the retention, one short transaction per batch."""
    total = 0
    for _ in range(MAX_BATCHES):
        with engine.begin() as conn:
            deleted = runs.prune_finished(conn, retention_days, batch)
        total += deleted
        metrics.PRUNED.inc(deleted)
        if deleted < batch:
            break
    logger.info("pruned %d finished run(s) older than %d day(s)", total, retention_days)
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
