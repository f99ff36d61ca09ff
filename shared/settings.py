"""One frozen Settings object, built once at each entry point from an environment mapping."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared import access
from shared.brokers import parse_redis_url
from shared.errors import ConfigError
from shared.pg_url import parse_database_url

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/srjobs"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
LOG_FORMATS = ("text", "json")


def default_node_name() -> str:
    """`<hostname>-<pid>`, the contract's default NODE_NAME."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything srjobs reads from its environment, validated."""

    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)  # may hold a password
    redis_url: str = field(default=DEFAULT_REDIS_URL, repr=False)
    node_name: str = field(default_factory=default_node_name)
    trace_summaries_cron: str = "*/2 * * * *"
    admin_user: str = "admin"
    admin_password: str | None = field(default=None, repr=False)
    log_format: str = "text"
    # Extensions beyond the contract (all prefixed SRJOBS_).
    redis_namespace: str = "dramatiq"
    leader_lease_seconds: float = 5.0
    leader_check_seconds: float = 1.0
    reconcile_seconds: float = 60.0
    misfire_grace_seconds: float = 60.0
    refresh_statement_timeout_seconds: float = 600.0
    refresh_lock_timeout_seconds: float = 5.0
    run_retention_days: int = 14
    worker_heartbeat_seconds: float = 5.0
    worker_dead_seconds: float = 60.0
    worker_shutdown_seconds: float = 6.0
    run_flush_seconds: float = 0.05
    health_host: str = "0.0.0.0"  # noqa: S104  (only when SRJOBS_HEALTH_PORT turns it on)
    health_port: int = 0
    job_modules: tuple[str, ...] = ()
    admin_secret: str | None = field(default=None, repr=False)  # signs CSRF tokens
    # Access to the admin beyond ADMIN_PASSWORD (parsed and checked in shared/access.py).
    viewer_user: str = access.DEFAULT_VIEWER_USER
    viewer_password: str | None = field(default=None, repr=False)
    auth_proxy_header: str | None = None  # lower case
    auth_proxy_from: tuple[access.IPNetwork, ...] = ()
    viewers: frozenset[str] = frozenset()  # proxy users with read-only access (casefolded)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the settings; a bad value raises ConfigError naming the variable."""
        env = os.environ if env is None else env
        log_format = env.get("LOG_FORMAT", "text") or "text"
        if log_format not in LOG_FORMATS:
            raise ConfigError(
                f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}"
            )
        database_url = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        parse_database_url(database_url)  # raises ConfigError naming DATABASE_URL
        redis_url = env.get("REDIS_URL") or DEFAULT_REDIS_URL
        parse_redis_url(redis_url)  # raises ConfigError naming REDIS_URL
        lease = _float(env, "SRJOBS_LEADER_LEASE_SECONDS", 5.0, minimum=1.0)
        heartbeat = _float(env, "SRJOBS_WORKER_HEARTBEAT_SECONDS", 5.0, minimum=0.1)
        dead = _float(env, "SRJOBS_WORKER_DEAD_SECONDS", 60.0, minimum=1.0)
        if dead < 3 * heartbeat:
            raise ConfigError(
                "SRJOBS_WORKER_DEAD_SECONDS must be at least 3 x SRJOBS_WORKER_HEARTBEAT_SECONDS"
                f" (got {dead:g} and {heartbeat:g})"
            )
        admin_user = env.get("ADMIN_USER") or "admin"
        return cls(
            database_url=database_url,
            redis_url=redis_url,
            node_name=env.get("NODE_NAME") or default_node_name(),
            trace_summaries_cron=env.get("TRACE_SUMMARIES_CRON") or "*/2 * * * *",
            admin_user=admin_user,
            admin_password=env.get("ADMIN_PASSWORD") or None,
            log_format=log_format,
            redis_namespace=env.get("SRJOBS_REDIS_NAMESPACE") or "dramatiq",
            leader_lease_seconds=lease,
            leader_check_seconds=_float(
                env, "SRJOBS_LEADER_CHECK_SECONDS", min(1.0, lease / 3), minimum=0.05
            ),
            reconcile_seconds=_float(env, "SRJOBS_RECONCILE_SECONDS", 60.0, minimum=1.0),
            misfire_grace_seconds=_float(env, "SRJOBS_MISFIRE_GRACE_SECONDS", 60.0, minimum=1.0),
            refresh_statement_timeout_seconds=_float(
                env, "SRJOBS_REFRESH_STATEMENT_TIMEOUT", 600.0, minimum=1.0
            ),
            refresh_lock_timeout_seconds=_float(
                env, "SRJOBS_REFRESH_LOCK_TIMEOUT", 5.0, minimum=0.1
            ),
            run_retention_days=_int(env, "SRJOBS_RUN_RETENTION_DAYS", 14, minimum=1),
            worker_heartbeat_seconds=heartbeat,
            worker_dead_seconds=dead,
            worker_shutdown_seconds=_float(env, "SRJOBS_WORKER_SHUTDOWN_SECONDS", 6.0, minimum=0.0),
            run_flush_seconds=_float(env, "SRJOBS_RUN_FLUSH_SECONDS", 0.05, minimum=0.0),
            health_host=env.get("SRJOBS_HEALTH_HOST") or "0.0.0.0",  # noqa: S104
            health_port=_int(env, "SRJOBS_HEALTH_PORT", 0, minimum=0),
            admin_secret=env.get("SRJOBS_ADMIN_SECRET") or None,
            job_modules=tuple(
                m.strip() for m in env.get("SRJOBS_JOB_MODULES", "").split(",") if m.strip()
            ),
            **access.from_env(env, admin_user),
        )
