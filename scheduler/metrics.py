"""The scheduler's Prometheus series (served on SRJOBS_HEALTH_PORT at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FIRES = Counter("srjobs_scheduler_fires", "Slots fired (a run recorded) per job", ["job"])
FIRE_LAG = Histogram(
    "srjobs_scheduler_fire_lag_seconds",
    "Time from a slot to its run being recorded (0 when recorded ahead of it)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60),
)
MISSED = Counter(
    "srjobs_scheduler_missed_slots", "Slots skipped: older than the misfire grace", ["job"]
)
LEADER = Gauge("srjobs_scheduler_leader", "1 while this instance leads, else 0")
LEADERSHIP_CHANGES = Counter(
    "srjobs_scheduler_leadership_changes", "Times this instance became or stopped being leader"
)
RELOADS = Counter("srjobs_scheduler_reloads", "Schedule changes applied from notifications")
RELOAD_LATENCY = Histogram(
    "srjobs_scheduler_reload_latency_seconds",
    "Time from a change to job_schedules to its being in force in the leader",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
RECONCILES = Counter("srjobs_scheduler_reconciles", "Full resyncs of schedules into the store")
OUTBOX_PENDING = Gauge("srjobs_scheduler_outbox_pending", "Runs recorded but not yet enqueued")
OUTBOX_SENDS = Counter(
    "srjobs_scheduler_outbox_sends", "Re-sends of pending runs by outcome", ["outcome"]
)
