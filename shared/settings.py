"""One frozen Settings object, built once at each entry point from an environment mapping.

Each setting is declared once, as a dataclass field whose metadata names its variable, its
parser and its minimum (`setting(...)`); `from_env` iterates over the fields, and
`__post_init__` validates however the object is built. A number derived from a setting is a
property, never a second default.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from shared import access
from shared.brokers import parse_redis_url
from shared.errors import ConfigError
from shared.pg_url import parse_database_url

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/srjobs"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
LOG_FORMATS = ("text", "json")
# How often a scheduler writes its `scheduler_nodes` row (scheduler/service.py).
SCHEDULER_HEARTBEAT_SECONDS = 1.0
# Heartbeats a peer may miss, beyond its lease, before the admin calls it stale.
MISSED_SCHEDULER_BEATS = 2


def default_node_name() -> str:
    """`<hostname>-<pid>`, the contract's default NODE_NAME."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _text(raw: str, name: str) -> str:
    return raw


def _optional(raw: str, name: str) -> str | None:
    return raw or None


def _number(raw: str, name: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _whole(raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _names(raw: str, name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _header(raw: str, name: str) -> str | None:
    return access.parse_header(name, raw)


def _networks(raw: str, name: str) -> tuple[access.IPNetwork, ...]:
    return access.parse_networks(name, raw)


def _viewers(raw: str, name: str) -> frozenset[str]:
    return frozenset(access.viewer_key(user) for user in _names(raw, name))


def webhook_urls(raw: str, name: str = "SRJOBS_ALERT_WEBHOOK_URLS") -> tuple[str, ...]:
    """Comma-separated http(s) URLs with a host; raises ConfigError naming the variable."""
    urls = _names(raw, name)
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{name} must list http(s) URLs, got {url!r}")
    return urls


def _base_url(raw: str, name: str) -> str | None:
    url = raw.strip().rstrip("/")
    return webhook_urls(url, name)[0] if url else None


def setting(
    env: str,
    default: Any = None,
    parse: Callable[[str, str], Any] = _text,
    *,
    minimum: float | None = None,
    secret: bool = False,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """A field read from the variable `env` (an empty value means the default)."""
    metadata = {"env": env, "parse": parse, "minimum": minimum}
    if factory is not None:
        return field(default_factory=factory, repr=not secret, metadata=metadata)
    return field(default=default, repr=not secret, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """Everything srjobs reads from its environment, validated."""

    database_url: str = setting("DATABASE_URL", DEFAULT_DATABASE_URL, secret=True)
    redis_url: str = setting("REDIS_URL", DEFAULT_REDIS_URL, secret=True)
    node_name: str = setting("NODE_NAME", factory=default_node_name)
    trace_summaries_cron: str = setting("TRACE_SUMMARIES_CRON", "*/2 * * * *")
    admin_user: str = setting("ADMIN_USER", "admin")
    admin_password: str | None = setting("ADMIN_PASSWORD", None, _optional, secret=True)
    log_format: str = setting("LOG_FORMAT", "text")
    startup_timeout_seconds: float = setting(
        "SRJOBS_STARTUP_TIMEOUT_SECONDS", 60.0, _number, minimum=0.0
    )
    # Extensions beyond the contract (all prefixed SRJOBS_).
    redis_namespace: str = setting("SRJOBS_REDIS_NAMESPACE", "dramatiq")
    leader_lease_seconds: float = setting("SRJOBS_LEADER_LEASE_SECONDS", 5.0, _number, minimum=1.0)
    # None: derived from the lease (see `leader_check_seconds`).
    leader_check_override: float | None = setting(
        "SRJOBS_LEADER_CHECK_SECONDS", None, _number, minimum=0.05
    )
    reconcile_seconds: float = setting("SRJOBS_RECONCILE_SECONDS", 60.0, _number, minimum=1.0)
    misfire_grace_seconds: float = setting(
        "SRJOBS_MISFIRE_GRACE_SECONDS", 60.0, _number, minimum=1.0
    )
    refresh_statement_timeout_seconds: float = setting(
        "SRJOBS_REFRESH_STATEMENT_TIMEOUT", 600.0, _number, minimum=1.0
    )
    refresh_lock_timeout_seconds: float = setting(
        "SRJOBS_REFRESH_LOCK_TIMEOUT", 5.0, _number, minimum=0.1
    )
    run_retention_days: int = setting("SRJOBS_RUN_RETENTION_DAYS", 14, _whole, minimum=1)
    worker_heartbeat_seconds: float = setting(
        "SRJOBS_WORKER_HEARTBEAT_SECONDS", 5.0, _number, minimum=0.1
    )
    worker_dead_seconds: float = setting("SRJOBS_WORKER_DEAD_SECONDS", 60.0, _number, minimum=1.0)
    worker_shutdown_seconds: float = setting(
        "SRJOBS_WORKER_SHUTDOWN_SECONDS", 6.0, _number, minimum=0.0
    )
    run_flush_seconds: float = setting("SRJOBS_RUN_FLUSH_SECONDS", 0.05, _number, minimum=0.0)
    # Only used when SRJOBS_HEALTH_PORT turns the health endpoint on.
    health_host: str = setting("SRJOBS_HEALTH_HOST", "0.0.0.0")  # noqa: S104
    health_port: int = setting("SRJOBS_HEALTH_PORT", 0, _whole, minimum=0)
    job_modules: tuple[str, ...] = setting("SRJOBS_JOB_MODULES", (), _names)
    admin_secret: str | None = setting(  # signs CSRF tokens
        "SRJOBS_ADMIN_SECRET", None, _optional, secret=True
    )
    # Access to the admin beyond ADMIN_PASSWORD (parsed and checked by shared/access.py).
    viewer_user: str = setting("VIEWER_USER", access.DEFAULT_VIEWER_USER)
    viewer_password: str | None = setting("VIEWER_PASSWORD", None, _optional, secret=True)
    auth_proxy_header: str | None = setting("SRJOBS_AUTH_PROXY_HEADER", None, _header)  # lower
    auth_proxy_from: tuple[access.IPNetwork, ...] = setting("SRJOBS_AUTH_PROXY_FROM", (), _networks)
    # Proxy users with read-only access (casefolded).
    viewers: frozenset[str] = setting("SRJOBS_VIEWERS", frozenset(), _viewers)
    # How often a worker process looks for cancel requests of the runs it is running.
    cancel_poll_seconds: float = setting("SRJOBS_CANCEL_POLL_SECONDS", 0.5, _number, minimum=0.05)

    # --- Freshness and alerts ---
    alert_webhook_urls: tuple[str, ...] = setting(  # secret: URLs often carry a token
        "SRJOBS_ALERT_WEBHOOK_URLS", (), webhook_urls, secret=True
    )
    alert_webhook_secret: str | None = setting(
        "SRJOBS_ALERT_WEBHOOK_SECRET", None, _optional, secret=True
    )
    admin_url: str | None = setting("SRJOBS_ADMIN_URL", None, _base_url)  # links in alerts
    # A receiver that has not answered after this is cut off (and retried).
    alert_timeout_seconds: float = setting(
        "SRJOBS_ALERT_TIMEOUT_SECONDS", 5.0, _number, minimum=0.1
    )
    # The first retry of an undelivered alert; doubles up to alert_retry_max_seconds.
    alert_retry_seconds: float = setting("SRJOBS_ALERT_RETRY_SECONDS", 5.0, _number, minimum=0.1)
    alert_retry_max_seconds: float = setting(
        "SRJOBS_ALERT_RETRY_MAX_SECONDS", 300.0, _number, minimum=0.1
    )
    alert_give_up_hours: float = setting("SRJOBS_ALERT_GIVE_UP_HOURS", 24.0, _number, minimum=1.0)
    # The leader's full health passes, besides its wake-ups on run outcomes and deadlines.
    health_pass_seconds: float = setting("SRJOBS_HEALTH_PASS_SECONDS", 30.0, _number, minimum=0.5)

    def __post_init__(self) -> None:
        for f in fields(self):
            minimum = f.metadata.get("minimum")
            value = getattr(self, f.name)
            if minimum is not None and value is not None and value < minimum:
                name = f.metadata["env"]
                raise ConfigError(f"{name} must be at least {minimum:g}, got {value!r}")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(
                f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {self.log_format!r}"
            )
        parse_database_url(self.database_url)  # raises ConfigError naming DATABASE_URL
        parse_redis_url(self.redis_url)  # raises ConfigError naming REDIS_URL
        if self.worker_dead_seconds < 3 * self.worker_heartbeat_seconds:
            raise ConfigError(
                "SRJOBS_WORKER_DEAD_SECONDS must be at least 3 x SRJOBS_WORKER_HEARTBEAT_SECONDS"
                f" (got {self.worker_dead_seconds:g} and {self.worker_heartbeat_seconds:g})"
            )
        access.check(
            access.AccessFields(
                viewer_user=self.viewer_user,
                viewer_password=self.viewer_password,
                auth_proxy_header=self.auth_proxy_header,
                auth_proxy_from=self.auth_proxy_from,
                viewers=self.viewers,
            ),
            self.admin_user,
        )
        webhook_urls(",".join(self.alert_webhook_urls))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the settings; a bad value raises ConfigError naming the variable."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw:  # unset or empty: the field's default
                values[f.name] = f.metadata["parse"](raw, f.metadata["env"])
        return cls(**values)

    @property
    def leader_check_seconds(self) -> float:
        """How often a leader checks its lock: SRJOBS_LEADER_CHECK_SECONDS, or a third of the
        lease (at most a second)."""
        if self.leader_check_override is not None:
            return self.leader_check_override
        return min(1.0, self.leader_lease_seconds / 3)

    @property
    def peer_stale_seconds(self) -> float:
        """A scheduler unseen for longer than its lease plus two heartbeats no longer counts."""
        return self.leader_lease_seconds + MISSED_SCHEDULER_BEATS * SCHEDULER_HEARTBEAT_SECONDS
