"""Each service started before Postgres or Redis answers waits for it, then starts by itself;
past SRJOBS_STARTUP_TIMEOUT_SECONDS it exits non-zero naming what did not answer; SIGTERM
during the wait stops it at once. Real servers on free loopback ports (never the shared ones):
a throwaway Postgres migrated once and stopped, a throwaway Redis not started yet."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg2
import pytest

from srjobs.dev import free_port
from tests.support.procs import Service, Services
from tests.support.schedulers import events
from tests.support.throwaway import ThrowawayPostgres, ThrowawayRedis, postgres_available
from tests.support.waiting import wait_for

pytestmark = pytest.mark.system

KINDS = ("scheduler", "worker", "dramatiq", "webadmin")


@pytest.fixture(scope="module")
def stopped_postgres() -> Iterator[ThrowawayPostgres]:
    """A throwaway cluster with a migrated `srjobs` database, stopped between tests."""
    if not postgres_available():
        pytest.skip("no PostgreSQL server binaries (initdb) or runuser on this machine")
    base = Path(tempfile.mkdtemp(prefix="srjobs-pg-wait-"))
    server = ThrowawayPostgres(base)
    try:
        server.init().start()
        migrated = subprocess.run(
            [sys.executable, "-m", "srjobs.cli", "migrate"],
            env={**os.environ, "DATABASE_URL": server.url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrated.returncode == 0, migrated.stderr
        server.stop()
        yield server
    finally:
        try:
            server.stop()
        except subprocess.SubprocessError:
            pass
        shutil.rmtree(base, ignore_errors=True)


def start(services: Services, kind: str, env: dict[str, str]) -> tuple[Service, str]:
    """Start one service of `kind` logging JSON; returns it and its admin URL (webadmin)."""
    env = {"LOG_FORMAT": "json", **env}
    if kind == "scheduler":
        return services.start(kind, "scheduler", env=env), ""
    if kind == "worker":
        args = ("worker", "--processes", "2", "--threads", "2")
        return services.start(kind, *args, env=env), ""
    if kind == "dramatiq":
        args = ("worker.actors", "--processes", "1", "--threads", "2")
        return services.start(kind, *args, env=env, module="dramatiq"), ""
    port = free_port()
    return services.start(
        kind, "webadmin", "--port", str(port), env=env
    ), f"http://127.0.0.1:{port}"


def waiting_for(service: Service, kind: str, dependency: str) -> bool:
    """The service logged that it waits for `dependency` (a structured event; the plain
    Dramatiq CLI logs text, so there the srjobs logger's warning names it)."""
    assert service.proc.poll() is None, f"{kind} exited:\n{service.log()}"
    if kind == "dramatiq":
        return any(
            "[shared.startup] [WARNING]" in line and dependency in line
            for line in service.log().splitlines()
        )
    return any(r.get("dependency") == dependency for r in events(service, "waiting_for_dependency"))


def count(database_url: str, query: str, node: str) -> int:
    conn = psycopg2.connect(database_url, connect_timeout=3)
    try:
        with conn.cursor() as cur:
            cur.execute(query, (node,))
            return cur.fetchone()[0]
    finally:
        conn.close()


def started(kind: str, service: Service, database_url: str, node: str, base: str) -> bool:
    """The service did what it does once started: a peer row, worker rows, an answering admin."""
    assert service.proc.poll() is None, f"{kind} exited:\n{service.log()}"
    if kind == "scheduler":
        return count(database_url, "SELECT count(*) FROM scheduler_nodes WHERE node = %s", node) > 0
    if kind in ("worker", "dramatiq"):
        processes = 2 if kind == "worker" else 1
        found = count(database_url, "SELECT count(*) FROM worker_nodes WHERE node = %s", node)
        return found >= processes
    return httpx.get(f"{base}/readyz", timeout=3).status_code == 200


def check(kind: str, service: Service, url: str, node: str, base: str) -> Callable[[], bool]:
    return lambda: started(kind, service, url, node, base)


@pytest.mark.parametrize("kind", KINDS)
def test_started_before_postgres_it_waits_then_starts(kind, stopped_postgres, services):
    node = f"wait-pg-{kind}-{uuid.uuid4().hex[:6]}"
    service, base = start(services, kind, {"DATABASE_URL": stopped_postgres.url, "NODE_NAME": node})
    try:
        wait_for(lambda: waiting_for(service, kind, "postgres"), 60, f"{kind} to wait for postgres")
        stopped_postgres.start()
        wait_for(check(kind, service, stopped_postgres.url, node, base), 90, f"{kind} to start")
    finally:
        assert service.stop() in (0, -signal.SIGTERM), service.log()
        stopped_postgres.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_started_before_redis_it_waits_then_starts(kind, settings, services):
    node = f"wait-redis-{kind}-{uuid.uuid4().hex[:6]}"
    redis_server = ThrowawayRedis()
    service, base = start(services, kind, {"REDIS_URL": redis_server.url, "NODE_NAME": node})
    try:
        wait_for(lambda: waiting_for(service, kind, "redis"), 60, f"{kind} to wait for redis")
        redis_server.start()
        wait_for(check(kind, service, settings.database_url, node, base), 90, f"{kind} to start")
    finally:
        service.stop()
        redis_server.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_past_the_timeout_it_exits_non_zero_naming_what_did_not_answer(kind, services):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    service, _ = start(services, kind, {"REDIS_URL": dead, "SRJOBS_STARTUP_TIMEOUT_SECONDS": "1"})
    code = service.proc.wait(60)
    assert code != 0, service.log()
    if kind == "dramatiq":
        assert "redis" in service.log()
    else:
        given_up = events(service, "dependency_unavailable")
        assert [r["dependency"] for r in given_up] == ["redis"], service.log()
        assert "redis" in service.log().splitlines()[-1]  # the exit message on stderr


@pytest.mark.parametrize("kind", KINDS)
def test_sigterm_during_the_wait_stops_it_at_once(kind, services):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    service, _ = start(services, kind, {"REDIS_URL": dead})
    wait_for(lambda: waiting_for(service, kind, "redis"), 60, f"{kind} to wait for redis")
    asked = time.monotonic()
    service.signal(signal.SIGTERM)
    code = service.proc.wait(10)
    assert time.monotonic() - asked < 10
    assert code == 0, service.log()
