"""Whether Postgres and Redis answer: the probes behind the startup wait and every `/readyz`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg2
import redis

from shared.brokers import redis_client, redis_location
from shared.db import dsn, safe_url
from shared.errors import NotMigrated
from shared.migrate import MIGRATE_HINT
from shared.settings import Settings

PROBE_SECONDS = 3.0  # how long one probe may take
# What a probe raises when its server does not answer (refused, timed out, starting up).
UNAVAILABLE: tuple[type[BaseException], ...] = (psycopg2.Error, redis.RedisError, OSError)


# What makes a service not ready: those, or a database that is missing.
NOT_READY: tuple[type[BaseException], ...] = (*UNAVAILABLE, NotMigrated)


@dataclass(frozen=True)
class Dependency:
    """A server a service needs; `probe(timeout)` raises one of UNAVAILABLE when it is down."""

    name: str  # "postgres" or "redis": what the startup wait logs and names when it gives up
    key: str  # its key in the readiness details
    where: str  # host, port (and database), never a password
    probe: Callable[[float], None]


def probe_postgres(database_url: str, timeout: float, *, missing_ok: bool = False) -> None:
    """Connect and SELECT 1. A server that says the database does not exist answers: that
    is NotMigrated (run `srjobs migrate`), not a reason to wait; with `missing_ok` (for
    `srjobs migrate`, which creates it) it is fine."""
    try:
        conn = psycopg2.connect(
            dsn(database_url),
            connect_timeout=max(2, math.ceil(timeout)),  # libpq's minimum is 2 s
            application_name="srjobs-probe",
        )
    except psycopg2.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
        if missing_ok:
            return
        raise NotMigrated(MIGRATE_HINT) from exc
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
    finally:
        conn.close()


def probe_redis(redis_url: str, timeout: float) -> None:
    """PING on a fresh connection."""
    client = redis_client(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


def postgres(settings: Settings, *, missing_ok: bool = False) -> Dependency:
    url = settings.database_url
    return Dependency(
        "postgres",
        "database",
        safe_url(url),
        lambda timeout: probe_postgres(url, timeout, missing_ok=missing_ok),
    )


def redis_server(settings: Settings) -> Dependency:
    url = settings.redis_url
    return Dependency(
        "redis", "redis", redis_location(url), lambda timeout: probe_redis(url, timeout)
    )


def dependencies(settings: Settings) -> list[Dependency]:
    """What every srjobs service needs: Postgres, then Redis."""
    return [postgres(settings), redis_server(settings)]


def readiness(
    needs: Sequence[Dependency], timeout: float = PROBE_SECONDS, **details: object
) -> tuple[bool, dict]:
    """Probe each dependency: (all answer, details with "ok" or "unavailable: <error type>")."""
    found: dict[str, object] = dict(details)
    ready = True
    for dependency in needs:
        try:
            dependency.probe(timeout)
            found[dependency.key] = "ok"
        except NOT_READY as exc:
            found[dependency.key] = f"unavailable: {type(exc).__name__}"
            ready = False
    return ready, found
