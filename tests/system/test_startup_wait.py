"""Each service started before Postgres or Redis answers waits for it, then starts by itself;
past SRJOBS_STARTUP_TIMEOUT_SECONDS it exits non-zero naming what did not answer; SIGTERM
during the wait stops it at once. Real servers on free loopback ports (never the shared ones):
a throwaway Postgres migrated once and stopped, a throwaway Redis not started yet."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg2
import pytest

from srjobs.dev import free_port
from tests.support.logs import events
from tests.support.procs import Service, Services
from tests.support.throwaway import ThrowawayPostgres, ThrowawayRedis, throwaway_postgres
from tests.support.waiting import wait_for

pytestmark = pytest.mark.system

KINDS = ("scheduler", "worker", "dramatiq", "webadmin")


@pytest.fixture(scope="module")
def stopped_postgres() -> Iterator[ThrowawayPostgres]:
    """A throwaway cluster with a migrated `srjobs` database, stopped between tests."""
    with throwaway_postgres() as server:
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


@dataclass
class Started:
    kind: str
    service: Service
    node: str
    base: str = ""  # the admin's URL


def start(services: Services, kind: str, env: dict[str, str]) -> Started:
    """Start one service of `kind`, logging JSON, under a NODE_NAME of its own."""
    node = f"wait-{kind}-{uuid.uuid4().hex[:6]}"
    env = {"LOG_FORMAT": "json", "NODE_NAME": node, **env}
    if kind == "scheduler":
        return Started(kind, services.start(kind, "scheduler", env=env), node)
    if kind == "worker":
        args = ("worker", "--processes", "2", "--threads", "2")
        return Started(kind, services.start(kind, *args, env=env), node)
    if kind == "dramatiq":
        # Plain Dramatiq holds its workers' log lines until they boot or this timeout passes
        # (30 s by default); the startup wait keeps them from booting.
        args = ("worker.actors", "--processes", "1", "--threads", "2")
        args += ("--worker-fork-timeout", "500")
        return Started(kind, services.start(kind, *args, env=env, module="dramatiq"), node)
    port = free_port()
    admin = services.start(kind, "webadmin", "--port", str(port), env=env)
    return Started(kind, admin, node, f"http://127.0.0.1:{port}")


def waiting_for(it: Started, dependency: str) -> bool:
    """The service logged that it waits for `dependency` (a structured event; the plain
    Dramatiq CLI logs text, so there the srjobs logger's warning names it)."""
    assert it.service.proc.poll() is None, f"{it.kind} exited:\n{it.service.log()}"
    if it.kind == "dramatiq":
        return any(
            "[shared.startup] [WARNING]" in line and dependency in line
            for line in it.service.log().splitlines()
        )
    found = events(it.service, "waiting_for_dependency")
    return any(r.get("dependency") == dependency for r in found)


def count(database_url: str, query: str, node: str) -> int:
    conn = psycopg2.connect(database_url, connect_timeout=3)
    try:
        with conn.cursor() as cur:
            cur.execute(query, (node,))
            return cur.fetchone()[0]
    finally:
        conn.close()


def started(it: Started, database_url: str) -> bool:
    """The service did what it does once started: a peer row, worker rows, an answering admin."""
    assert it.service.proc.poll() is None, f"{it.kind} exited:\n{it.service.log()}"
    if it.kind == "scheduler":
        query = "SELECT count(*) FROM scheduler_nodes WHERE node = %s"
        return count(database_url, query, it.node) > 0
    if it.kind in ("worker", "dramatiq"):
        processes = 2 if it.kind == "worker" else 1
        query = "SELECT count(*) FROM worker_nodes WHERE node = %s"
        return count(database_url, query, it.node) >= processes
    return httpx.get(f"{it.base}/readyz", timeout=3).status_code == 200


@pytest.mark.parametrize("dependency", ["postgres", "redis"])
@pytest.mark.parametrize("kind", KINDS)
def test_started_before_its_dependency_it_waits_then_starts(
    kind, dependency, request, settings, services
):
    server: ThrowawayPostgres | ThrowawayRedis
    if dependency == "postgres":
        server = request.getfixturevalue("stopped_postgres")
        env, database_url = {"DATABASE_URL": server.url}, server.url
    else:
        server = ThrowawayRedis()
        env, database_url = {"REDIS_URL": server.url}, settings.database_url
    it = start(services, kind, env)
    try:
        wait_for(lambda: waiting_for(it, dependency), 60, f"{kind} to wait for {dependency}")
        server.start()
        wait_for(lambda: started(it, database_url), 90, f"{kind} to start")
    finally:
        it.service.stop()
        server.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_past_the_timeout_it_exits_non_zero_naming_what_did_not_answer(kind, services):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    service = start(
        services, kind, {"REDIS_URL": dead, "SRJOBS_STARTUP_TIMEOUT_SECONDS": "1"}
    ).service
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
    it = start(services, kind, {"REDIS_URL": dead})
    service = it.service
    wait_for(lambda: waiting_for(it, "redis"), 60, f"{kind} to wait for redis")
    asked = time.monotonic()
    service.signal(signal.SIGTERM)
    code = service.proc.wait(10)
    assert time.monotonic() - asked < 10
    assert code == 0, service.log()
