"""The admin application factory; resources open in the lifespan, never at import."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from shared.db import make_engine
from shared.dispatch import make_sender
from shared.settings import Settings
from webadmin.routes import api, health, pages

logger = logging.getLogger(__name__)
HERE = Path(__file__).parent


def templates() -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True),
    )
    return Jinja2Templates(env=env)


def create_app(settings: Settings) -> Starlette:
    """Build the admin for `settings`; the engine and broker live as long as the app."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict]:
        engine = make_engine(settings, application_name="srjobs-webadmin")
        broker = make_sender(settings)
        if settings.admin_password is None:
            logger.warning("ADMIN_PASSWORD is not set: the admin is unauthenticated")
        try:
            yield {"settings": settings, "engine": engine, "broker": broker}
        finally:
            broker.close()
            engine.dispose()

    routes = [
        Route("/healthz", health.healthz),
        Route("/", pages.index),
        Route("/jobs", pages.jobs_page),
        Route("/jobs/{name}", pages.job_page),
        Route("/api/jobs", api.list_jobs),
        Route("/api/jobs/{name}", api.get_job),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.templates = templates()
    app.state.settings = settings
    return app
