"""The worker's broker: built and bound once, before any actor module is imported."""

from __future__ import annotations

import dramatiq
import dramatiq.broker
from dramatiq import Broker
from dramatiq.middleware import Retries

from shared.brokers import redis_broker
from shared.settings import Settings
from worker.jobs import DEFAULT_MAX_BACKOFF_MS, DEFAULT_MAX_RETRIES, DEFAULT_MIN_BACKOFF_MS
from worker.middleware import ProcessResources, ProcessState, srjobs_middleware
from worker.middleware.cancel import Cancellation
from worker.startup import WaitForDependencies

_settings: Settings | None = None


def setup_broker(settings: Settings, broker: Broker | None = None) -> Broker:
    """Add srjobs' middleware to `broker` (a Redis broker by default) and bind it globally."""
    if broker is None:
        broker = redis_broker(settings.redis_url, settings.redis_namespace)
    for middleware in broker.middleware:
        if isinstance(middleware, Retries):
            # Plain actors (periodiq-declared ones too) get the same defaults as @job.
            middleware.max_retries = DEFAULT_MAX_RETRIES
            middleware.min_backoff = DEFAULT_MIN_BACKOFF_MS
            middleware.max_backoff = DEFAULT_MAX_BACKOFF_MS
    # Before Retries in the list means after it in the after-hooks (they run reversed), so
    # the run's outcome is recorded once Retries has decided whether to give the message up.
    global _settings
    state = ProcessState(settings)
    for middleware in srjobs_middleware(state):
        broker.add_middleware(middleware, before=Retries)
    # After Retries in the list, so its after-hook runs before Retries' one: a cancelled run
    # is given up (not retried) before Retries and RunOutcome see it.
    broker.add_middleware(Cancellation(state))
    # After-hooks run last-added first: the process waits before anything else boots.
    broker.add_middleware(WaitForDependencies(settings))
    dramatiq.set_broker(broker)
    _settings = settings
    return broker


def process_state(broker: Broker) -> ProcessState:
    """The state the broker's srjobs middlewares share."""
    return next(m.state for m in broker.middleware if isinstance(m, ProcessResources))


def ensure_broker() -> Broker:
    """The bound broker; `dramatiq worker.actors` gets one built from the environment."""
    if dramatiq.broker.global_broker is None or _settings is None:
        return setup_broker(Settings.from_env())
    return dramatiq.broker.global_broker


def bound_settings() -> Settings:
    """The settings the bound broker was set up with."""
    if _settings is None:
        raise RuntimeError("setup_broker() has not run")
    return _settings
