"""The worker's health and metrics port: one per `srjobs worker`, whatever `--processes`.

Worker processes write their metrics to PROMETHEUS_MULTIPROC_DIR (prometheus-client's
multiprocess mode); the health server runs in the parent process and sums them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING

import psycopg2
import redis

from shared.brokers import redis_client
from shared.db import dsn
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.health import HealthServer

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir() -> str | None:
    """Point prometheus-client at a fresh directory (before it is imported); return it when
    this call created it, so the caller removes it at exit."""
    if os.environ.get(MULTIPROC_ENV):
        return None
    path = tempfile.mkdtemp(prefix="srjobs-worker-metrics-")
    os.environ[MULTIPROC_ENV] = path
    return path


def remove_metrics_dir(path: str | None) -> None:
    if path:
        shutil.rmtree(path, ignore_errors=True)


def readiness(settings: Settings) -> tuple[bool, dict]:
    """Ready when the database and Redis both answer within a few seconds."""
    details: dict[str, str] = {}
    try:
        conn = psycopg2.connect(dsn(settings.database_url), connect_timeout=3)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
        finally:
            conn.close()
        details["database"] = "ok"
    except psycopg2.Error as exc:
        details["database"] = f"unreachable: {type(exc).__name__}"
    client = redis_client(settings.redis_url, socket_timeout=3, socket_connect_timeout=3)
    try:
        client.ping()
        details["redis"] = "ok"
    except (redis.RedisError, OSError) as exc:
        details["redis"] = f"unreachable: {type(exc).__name__}"
    finally:
        client.close()
    return all(v == "ok" for v in details.values()), details


def start_health(settings: Settings) -> HealthServer:
    """Serve /healthz, /readyz and /metrics (all worker processes) on SRJOBS_HEALTH_PORT."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    from shared.health import HealthServer

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return HealthServer(
        settings.health_host,
        settings.health_port,
        lambda: readiness(settings),
        registry=registry,
    ).start()
