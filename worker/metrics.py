"""The worker's Prometheus metrics (prometheus-client; multiprocess-safe kinds only).

With `--processes N` every process writes its samples to PROMETHEUS_MULTIPROC_DIR and the one
health server of `srjobs worker` sums them, so N processes share one port. Dramatiq's own
Prometheus middleware would open a second port (its own fork process) and count messages, not
runs; these series are per job and per run outcome, next to /healthz and /readyz.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

RUNS = Counter(
    "srjobs_worker_runs_total",
    "Finished run attempts by job and outcome (succeeded, failed, discarded).",
    ["job", "outcome"],
)
RUN_SECONDS = Histogram(
    "srjobs_worker_run_duration_seconds",
    "How long a job ran, by job and outcome.",
    ["job", "outcome"],
    buckets=(0.005, 0.025, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)
SKIPPED = Counter(
    "srjobs_worker_skipped_messages_total",
    "Messages acknowledged without running: finished or unknown run, stale copy, expired.",
    ["job", "reason"],
)
RESCUED = Counter(
    "srjobs_worker_rescued_runs_total",
    "Runs found orphaned by a dead worker or a lost retry, by what was done to them.",
    ["job", "outcome"],
)
PRUNED = Counter("srjobs_worker_pruned_runs_total", "Finished runs deleted by retention.")


# (job, outcome) -> its counter and histogram children: `labels()` takes the metric's lock and
# builds the key each time, a cost paid per message on the worker's hot path.
_run_children: dict[tuple[str, str], tuple[Any, Any]] = {}


def observe_run(job: str, outcome: str, seconds: float) -> None:
    """Count one finished attempt."""
    children = _run_children.get((job, outcome))
    if children is None:
        children = (RUNS.labels(job, outcome), RUN_SECONDS.labels(job, outcome))
        _run_children[(job, outcome)] = children
    children[0].inc()
    children[1].observe(seconds)
