"""Every srjobs actor. `dramatiq worker.actors` imports this module.

The broker is bound first, then the built-in jobs are declared, then the modules listed in
SRJOBS_JOB_MODULES are imported so that they can declare theirs.
"""

from __future__ import annotations

import importlib
import logging

from worker.broker import bound_settings, ensure_broker

broker = ensure_broker()

from shared.errors import PermanentJobError  # noqa: E402
from worker.jobs import job  # noqa: E402  (after the broker is bound)
from worker.refresh import TRACE_SUMMARIES_VIEW, refresh_view  # noqa: E402
from worker.rescue import rescue_orphans  # noqa: E402
from worker.resources import current  # noqa: E402
from worker.retention import prune_peers, prune_runs  # noqa: E402

logger = logging.getLogger(__name__)


@job(
    schedule=lambda settings: settings.trace_summaries_cron,
    description="Refresh the otel_trace_summaries materialized view for the trace list",
    max_retries=5,
)
def refresh_trace_summaries() -> None:
    refresh_materialized_view.fn(TRACE_SUMMARIES_VIEW)


@job(
    schedule=None,
    description="Refresh a materialized view (CONCURRENTLY when it is populated and has a"
    " unique index); `view` may be schema-qualified",
    max_retries=5,
)
def refresh_materialized_view(view: str) -> None:
    res = current()
    if not isinstance(view, str):
        raise PermanentJobError(f"view must be a string, got {type(view).__name__}")
    with res.engine.begin() as conn:
        mode = refresh_view(
            conn.connection.dbapi_connection,
            view,
            statement_timeout_s=res.settings.refresh_statement_timeout_seconds,
            lock_timeout_s=res.settings.refresh_lock_timeout_seconds,
        )
    logger.info("refreshed %s (%s)", view, mode, extra={"event": "view_refreshed", "view": view})


@job(
    schedule="17 3 * * *",
    description="Delete finished runs older than SRJOBS_RUN_RETENTION_DAYS, in small batches,"
    " and scheduler and worker rows gone for a day",
    max_retries=2,
    unique=True,
)
def srjobs_prune_runs() -> None:
    res = current()
    prune_runs(res.engine, res.settings.run_retention_days)
    prune_peers(res.engine)


@job(
    schedule="@every 1m",
    description="Close runs left running by a worker that died, and retries that never came",
    max_retries=0,
    unique=True,
)
def srjobs_rescue_runs() -> None:
    res = current()
    counts = rescue_orphans(res.engine, broker, res.settings.worker_dead_seconds)
    if any(counts.values()):
        logger.info("rescued runs: %s", counts)


for _module in bound_settings().job_modules:
    importlib.import_module(_module)
