"""Middleware: plain actors declared with periodiq's `periodic=cron(...)` become jobs."""

from __future__ import annotations

import logging

from dramatiq import Actor, Broker, Middleware

from worker.jobs import register_periodic

logger = logging.getLogger(__name__)


class PeriodiqAdoption(Middleware):
    """Accepts periodiq's actor option; srjobs' scheduler fires its schedule."""

    @property
    def actor_options(self) -> set[str]:
        return {"periodic"}

    def after_declare_actor(self, broker: Broker, actor: Actor) -> None:
        if register_periodic(actor):
            logger.debug("job %s declared with a periodiq schedule", actor.actor_name)
