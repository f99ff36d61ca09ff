"""Test harness: one template database migrated per session, a fresh copy per test, Redis
isolated by a per-test key namespace, and real srjobs processes for system tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg2
import pytest
import redis
from psycopg2 import sql
from sqlalchemy import Engine

from shared.actors import ActorInfo, Param
from shared.db import make_engine
from shared.migrate import migrate
from shared.schedules import ScheduleSeed
from shared.settings import Settings
from tests.support.procs import Services
from tests.support.servers import Servers, pick_servers

SESSION_TAG = uuid.uuid4().hex[:8]
_servers: Servers | None = None


def servers() -> Servers:
    global _servers
    if _servers is None:
        _servers = pick_servers()
    return _servers


def pytest_report_header(config) -> str:
    try:
        return f"srjobs test servers: {servers().source}"
    except RuntimeError as exc:
        return f"srjobs test servers: none ({exc})"


def pytest_sessionfinish(session, exitstatus) -> None:
    if _servers is not None:
        # Workers may write a last heartbeat after a test's own cleanup: sweep the session's keys.
        client = redis.Redis.from_url(_servers.redis_url)
        try:
            keys = list(client.scan_iter(f"srjobs-test-{SESSION_TAG}-*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
        finally:
            client.close()
        for container in _servers.containers:
            container.stop()


def _admin():
    conn = psycopg2.connect(servers().pg_admin_url)
    conn.autocommit = True
    return conn


def database_url(name: str) -> str:
    return servers().pg_admin_url.rsplit("/", 1)[0] + f"/{name}"


def create_database(name: str, template: str | None = None) -> str:
    conn = _admin()
    try:
        with conn.cursor() as cur:
            if template:
                cur.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(template)
                    )
                )
            else:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    return database_url(name)


def drop_database(name: str) -> None:
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        conn.close()


def make_settings(db_url: str, **overrides) -> Settings:
    values = dict(
        database_url=db_url,
        redis_url=servers().redis_url,
        redis_namespace=f"srjobs-test-{SESSION_TAG}-{uuid.uuid4().hex[:10]}",
        node_name=f"test-{uuid.uuid4().hex[:6]}",
    )
    values.update(overrides)
    return Settings(**values)


REFRESH_SEED = ScheduleSeed(
    name="refresh_trace_summaries",
    actor="refresh_trace_summaries",
    cron="*/2 * * * *",
    description="Refresh the otel_trace_summaries materialized view for the trace list",
)


# What `srjobs migrate` writes for these two built-in actors (tests/integration/test_actors.py
# checks it against a real migrate).
CATALOGUE = [
    ActorInfo(
        "refresh_trace_summaries",
        "Refresh the otel_trace_summaries materialized view for the trace list",
        "default",
        (),
    ),
    ActorInfo(
        "refresh_materialized_view",
        "Refresh a materialized view (CONCURRENTLY when it is populated and has a unique"
        " index); `view` may be schema-qualified",
        "default",
        (Param("view", True),),
    ),
]


@pytest.fixture(scope="session")
def template_db() -> Iterator[str]:
    """A database migrated once per session; tests copy it."""
    name = f"srjobs_test_tpl_{SESSION_TAG}"
    url = database_url(name)
    migrate(make_settings(url), [REFRESH_SEED], CATALOGUE)
    yield name
    drop_database(name)


@pytest.fixture
def db_url(template_db: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    name = f"srjobs_test_{SESSION_TAG}_{uuid.uuid4().hex[:8]}"
    url = create_database(name, template=template_db)
    yield url
    drop_database(name)


@pytest.fixture
def empty_db_name() -> Iterator[str]:
    """A database name that does not exist yet (dropped at teardown if created)."""
    name = f"srjobs_test_{SESSION_TAG}_{uuid.uuid4().hex[:8]}"
    yield name
    drop_database(name)


@pytest.fixture
def settings(db_url: str) -> Iterator[Settings]:
    s = make_settings(db_url)
    yield s
    flush_namespace(s)


def flush_namespace(s: Settings) -> None:
    client = redis.Redis.from_url(s.redis_url)
    try:
        keys = list(client.scan_iter(f"{s.redis_namespace}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    eng = make_engine(settings)
    yield eng
    eng.dispose()


def service_env(s: Settings) -> dict[str, str]:
    """The environment that points srjobs processes at this test's database and Redis."""
    return {
        "DATABASE_URL": s.database_url,
        "REDIS_URL": s.redis_url,
        "SRJOBS_REDIS_NAMESPACE": s.redis_namespace,
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def services(settings: Settings, tmp_path) -> Iterator[Services]:
    """Real srjobs processes against this test's database; all stopped at teardown."""
    svc = Services(service_env(settings), tmp_path)
    yield svc
    svc.stop_all()
