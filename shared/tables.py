"""SQLAlchemy Core definitions of the srjobs tables (the migrations create them)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

job_schedules = Table(
    "job_schedules",
    metadata,
    Column("name", Text, primary_key=True),
    Column("actor", Text, nullable=False),
    Column("queue", Text, nullable=False),
    Column("cron", Text, nullable=False),
    Column("timezone", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("stale_after_seconds", Integer),
    Column("enabled_at", DateTime(timezone=True), nullable=False),
    Column("args", JSONB, nullable=False),
    Column("declared", Boolean, nullable=False),
)

job_actors = Table(
    "job_actors",
    metadata,
    Column("name", Text, primary_key=True),
    Column("description", Text, nullable=False),
    Column("queue", Text, nullable=False),
    Column("params", JSONB, nullable=False),
    Column("any_args", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

job_runs = Table(
    "job_runs",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("job_name", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("scheduled_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("enqueued_at", DateTime(timezone=True)),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("attempt", Integer, nullable=False),
    Column("node", Text),
    Column("error", Text),
    Column("traceback", Text),
    Column("send_attempts", Integer, nullable=False),
    Column("next_send_at", DateTime(timezone=True)),
    Column("worker", Text),
    Column("args", JSONB, nullable=False),
    Column("retry_of", BigInteger),
    Column("cancel_requested_at", DateTime(timezone=True)),
)

scheduler_nodes = Table(
    "scheduler_nodes",
    metadata,
    Column("node", Text, primary_key=True),
    Column("role", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("leader_since", DateTime(timezone=True)),
)

worker_nodes = Table(
    "worker_nodes",
    metadata,
    Column("worker", Text, primary_key=True),
    Column("node", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("who", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("job_name", Text, nullable=False),
    Column("old_values", JSONB),
    Column("new_values", JSONB),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("job_name", Text, nullable=False),
    Column("event", Text, nullable=False),
    Column("health", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("details", JSONB, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("deliveries", JSONB, nullable=False),
)

job_alert_state = Table(
    "job_alert_state",
    metadata,
    Column("job_name", Text, primary_key=True),
    Column("health", Text, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

# Lowest and highest run id per bucket of `created_at` (migration 0006; shared.runs.id_bounds).
job_run_id_ranges = Table(
    "job_run_id_ranges",
    metadata,
    Column("width", Integer, primary_key=True),
    Column("starts_at", DateTime(timezone=True), primary_key=True),
    Column("min_id", BigInteger, nullable=False),
    Column("max_id", BigInteger, nullable=False),
)
