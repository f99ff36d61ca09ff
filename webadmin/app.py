"""The admin application factory; resources open in the lifespan, never at import."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from shared.db import make_engine
from shared.dispatch import make_sender
from shared.settings import Settings
from webadmin.auth import AuthMiddleware, auth_required, log_access
from webadmin.errors import HANDLERS
from webadmin.jobs_body import JobsBody
from webadmin.metrics import MetricsMiddleware, make_registry
from webadmin.openapi import openapi
from webadmin.rendering import make_templates
from webadmin.routes import api, control_forms, forms, health, pages
from webadmin.security import Csrf, SecurityMiddleware

logger = logging.getLogger(__name__)
HERE = Path(__file__).parent

ROUTES = [
    Route("/healthz", health.healthz),
    Route("/readyz", health.readyz),
    Route("/metrics", health.metrics),
    Route("/openapi.json", openapi),
    Route("/api/jobs", api.list_jobs, methods=["GET"]),
    Route("/api/jobs", api.create_job, methods=["POST"]),
    Route("/api/jobs/{name}", api.get_job, methods=["GET"]),
    Route("/api/jobs/{name}", api.patch_job, methods=["PATCH"]),
    Route("/api/jobs/{name}", api.delete_job, methods=["DELETE"]),
    Route("/api/actors", api.list_actors),
    Route("/api/runs", api.search_runs),
    Route("/api/runs/{id}/cancel", api.cancel_run, methods=["POST"]),
    Route("/api/runs/{id}/retry", api.retry_run, methods=["POST"]),
    Route("/api/jobs/{name}/runs", api.job_runs, methods=["GET"]),
    Route("/api/jobs/{name}/runs", api.start_run, methods=["POST"]),
    Route("/api/runs/{id}", api.get_run),
    Route("/api/scheduler", api.scheduler),
    Route("/api/preview", api.preview),
    Route("/api/alerts", api.list_alerts),
    Route("/", pages.index),
    Route("/jobs", pages.jobs_page),
    # Not under /jobs/: a job may be named "new".
    Route("/new-schedule", control_forms.new_job_page, methods=["GET"]),
    Route("/new-schedule", control_forms.create_job, methods=["POST"]),
    Route("/jobs/{name}", pages.job_page),
    Route("/jobs/{name}/delete", control_forms.delete_page, methods=["GET"]),
    Route("/jobs/{name}/delete", control_forms.delete_job, methods=["POST"]),
    Route("/runs/{id}/cancel", control_forms.cancel_run, methods=["POST"]),
    Route("/runs/{id}/retry", control_forms.retry_run, methods=["POST"]),
    Route("/jobs/{name}/schedule", forms.save_schedule, methods=["POST"]),
    Route("/jobs/{name}/run", forms.run_now, methods=["POST"]),
    Route("/runs", pages.runs_page),
    Route("/runs/{id}", pages.run_page),
    Route("/scheduler", pages.scheduler_page),
    Route("/alerts", pages.alerts_page),
    Route("/nodes", pages.nodes_page),
    Route("/fragments/alerts", pages.alerts_fragment),
    Route("/fragments/nodes", pages.nodes_fragment),
    Route("/fragments/jobs", pages.jobs_fragment),
    Route("/fragments/jobs/{name}/runs", pages.job_runs_fragment),
    Route("/fragments/runs", pages.runs_fragment),
    Route("/fragments/runs/{id}", pages.run_fragment),
    Route("/fragments/scheduler", pages.scheduler_fragment),
    Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
]


def create_app(settings: Settings, *, loopback_only: bool = True) -> Starlette:
    """Build the admin for `settings`; the engine and the sending broker live as long as it.

    `loopback_only`: the server listens on loopback, so without a password only requests
    addressed to a loopback name are answered (no DNS rebinding)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict]:
        engine = make_engine(settings, application_name="srjobs-webadmin")
        broker = make_sender(settings)
        if not auth_required(settings):
            logger.warning("ADMIN_PASSWORD is not set: the admin is unauthenticated")
        log_access(settings)
        try:
            yield {
                "settings": settings,
                "engine": engine,
                "broker": broker,
                "jobs_body": JobsBody(),
            }
        finally:
            broker.close()
            engine.dispose()
            logger.info("admin stopped", extra={"event": "admin_stopped"})

    registry, latency = make_registry()
    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        exception_handlers=HANDLERS,
        middleware=[
            Middleware(MetricsMiddleware, latency=latency),
            Middleware(
                SecurityMiddleware, check_host=loopback_only and not auth_required(settings)
            ),
            Middleware(AuthMiddleware, settings=settings),
        ],
    )
    app.state.templates = make_templates()
    app.state.settings = settings
    app.state.csrf = Csrf(settings.admin_secret)
    app.state.metrics_registry = registry
    return app
