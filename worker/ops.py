"""The worker's health and metrics port: one per `srjobs worker`, whatever `--processes`.

Worker processes write their metrics to PROMETHEUS_MULTIPROC_DIR (prometheus-client's
multiprocess mode); the health server runs in the parent process and sums them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING

from shared.dependencies import dependencies, readiness
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


def start_health(settings: Settings) -> HealthServer:
    """Serve /healthz, /readyz and /metrics (all worker processes) on SRJOBS_HEALTH_PORT."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    from shared.health import HealthServer

    needs = dependencies(settings)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return HealthServer(
        settings.health_host,
        settings.health_port,
        lambda: readiness(needs),
        registry=registry,
    ).start()
