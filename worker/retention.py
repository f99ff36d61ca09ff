"""Retention: delete finished runs older than SRJOBS_RUN_RETENTION_DAYS, in short batches."""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from shared import runs
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
