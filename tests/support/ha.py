"""Replicated throwaway servers whose primary a test kills -9: a Redis primary with a replica
and three sentinels, and a Postgres primary with a streaming replica made by pg_basebackup.
All on free loopback ports, from the binaries on this machine; never the shared servers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2
import redis
from sqlalchemy import Engine, text

from tests.support.procs import Service, Services
from tests.support.schedulers import set_cron, start_scheduler, stored_jobs
from tests.support.throwaway import PG_BIN, ThrowawayPostgres, free_port, postgres_available
from tests.support.waiting import wait_for

JOB = "refresh_trace_summaries"
SERVICE = "srjobs"
DOWN_AFTER_MS = 1000  # sentinel: a primary silent this long is down
FAILOVER_TIMEOUT_MS = 3000
# pg_basebackup lives beside the real initdb (PG_BIN may hold links to a few binaries only).
PG_TOOLS = (PG_BIN / "initdb").resolve().parent


@contextlib.contextmanager
def redis_on(port: int) -> Iterator[redis.Redis]:
    client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
    try:
        yield client
    finally:
        client.close()


def _pings(port: int) -> bool:
    with redis_on(port) as client:
        return bool(client.ping())


class RedisGroup:
    """Two redis-server nodes (a primary, a replica) watched by three sentinels."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.nodes: dict[int, subprocess.Popen | None] = {free_port(): None, free_port(): None}
        self.sentinels: dict[int, subprocess.Popen] = {}
        self.url = ""

    def _node(self, port: int, replica_of: int | None = None) -> None:
        args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.base)]
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.nodes[port] = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(lambda: _pings(port), 10, f"redis on port {port}")

    def start(self) -> RedisGroup:
        primary, replica = list(self.nodes)
        self._node(primary)
        self._node(replica, replica_of=primary)
        wait_for(lambda: self.in_sync(replica), 20, "the replica to sync")
        for _ in range(3):
            port = free_port()
            conf = self.base / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {primary} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self.sentinels[port] = subprocess.Popen(
                ["redis-server", str(conf), "--sentinel"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinels)
        self.url = f"redis+sentinel://{hosts}/{SERVICE}/0"
        wait_for(self.settled, 30, "the sentinels to see the primary, the replica and each other")
        return self

    def primary(self) -> int | None:
        """The primary's port as the sentinels name it."""
        for port in self.sentinels:
            with contextlib.suppress(redis.RedisError), redis_on(port) as client:
                address = client.sentinel_get_master_addr_by_name(SERVICE)
                if address:
                    return int(address[1])
        return None

    def in_sync(self, port: int) -> bool:
        with redis_on(port) as client:
            info = client.info("replication")
        return info.get("master_link_status") == "up" and not info.get("master_sync_in_progress")

    def settled(self) -> bool:
        """Every sentinel names the same primary, sees 2 peers and a replica in sync."""
        primary = self.primary()
        if primary is None:
            return False
        for port in self.sentinels:
            with redis_on(port) as client:
                state = client.sentinel_master(SERVICE)
            if state["port"] != primary or not state["is_master"] or state["is_sdown"]:
                return False
            if state["num-other-sentinels"] < 2 or state["num-slaves"] < 1:
                return False
        replica = next(p for p in self.nodes if p != primary)
        return self.nodes[replica] is not None and self.in_sync(replica)

    def kill_primary(self) -> int:
        """kill -9 the primary; returns its port (the node stays down until `revive`)."""
        port = self.primary()
        assert port is not None
        proc = self.nodes[port]
        assert proc is not None
        proc.kill()
        proc.wait(10)
        self.nodes[port] = None
        return port

    def revive(self, port: int) -> None:
        """Start a killed node again, empty; the sentinels make it a replica of the primary."""
        self._node(port)

    def stop(self) -> None:
        for proc in [*self.sentinels.values(), *self.nodes.values()]:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)


def _descendants(pid: int) -> list[int]:
    """The processes whose parent is `pid` (a postmaster's backends and helpers)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


class PostgresPair:
    """A primary and a streaming replica (pg_basebackup -R); `synchronous` makes every commit
    wait for the replica (synchronous_standby_names), else replication is asynchronous."""

    def __init__(self, synchronous: bool) -> None:
        self.synchronous = synchronous
        self.base = Path(tempfile.mkdtemp(prefix="srjobs-pg-ha-"))
        shutil.chown(self.base, "postgres", "postgres")  # the servers run as user postgres
        self.primary = ThrowawayPostgres(self.base / "primary")
        self.replica = ThrowawayPostgres(self.base / "replica")
        hosts = f"127.0.0.1:{self.primary.port},127.0.0.1:{self.replica.port}"
        self.url = f"postgresql://postgres@{hosts}/srjobs?target_session_attrs=read-write"

    def start(self) -> PostgresPair:
        self.primary.init().start()
        self.replica.base.mkdir(parents=True)
        shutil.chown(self.replica.base, "postgres", "postgres")
        os.chmod(self.replica.base, 0o700)
        self.primary._as_postgres(
            str(PG_TOOLS / "pg_basebackup"),
            *("-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres"),
            *("-D", str(self.replica.data), "-R", "-X", "stream", "-c", "fast"),
            timeout=120,
        )
        self.replica.start()
        wait_for(lambda: self._replication_state() == "async", 30, "the replica to stream")
        if self.synchronous:
            # Set on the primary only, after the copy: a promoted replica must not wait for
            # a standby it does not have.
            self._primary_sql("ALTER SYSTEM SET synchronous_standby_names = '*'")
            self._primary_sql("SELECT pg_reload_conf()")
            wait_for(lambda: self._replication_state() == "sync", 30, "synchronous replication")
        return self

    def _primary_sql(self, statement: str) -> object:
        conn = psycopg2.connect(self.primary.admin_url, connect_timeout=3)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
                return cur.fetchone() if cur.description else None
        finally:
            conn.close()

    def _replication_state(self) -> str | None:
        row = self._primary_sql("SELECT sync_state FROM pg_stat_replication LIMIT 1")
        return row[0] if isinstance(row, tuple) else None

    def kill_primary(self) -> None:
        """kill -9 the primary's postmaster and every process of it, like a crashed host."""
        pid = int((self.primary.data / "postmaster.pid").read_text().split()[0])
        victims = [pid, *_descendants(pid)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)

    def promote(self) -> None:
        """`pg_ctl promote` the replica and wait until it accepts writes."""
        self.replica._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.replica.data), "-w", "promote"
        )

    def stop(self) -> None:
        for server in (self.replica, self.primary):
            with contextlib.suppress(subprocess.SubprocessError):
                server.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def postgres_pair_available() -> bool:
    return postgres_available() and (PG_TOOLS / "pg_basebackup").exists()


# --- srjobs on top of them -----------------------------------------------------------------

STOPPED = "0 0 1 1 *"  # a schedule that does not fire during a test
UNSETTLED = ("pending", "enqueued", "running", "failed")


def start_cluster(services: Services, **env: str) -> list[Service]:
    """Two schedulers and two workers, as a production deployment runs them."""
    procs = [start_scheduler(services, f"ha-scheduler-{n}", **env) for n in "ab"]
    for n in "ab":
        worker_env = {"NODE_NAME": f"ha-worker-{n}", "LOG_FORMAT": "json", **env}
        procs.append(
            services.start(
                f"ha-worker-{n}", "worker", "--processes", "1", "--threads", "2", env=worker_env
            )
        )
    return procs


def _scalar(engine: Engine, query: str, **params: object) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(query), params).scalar()


def succeeded_since(engine: Engine, since: datetime) -> int:
    """Runs fired after `since` that succeeded."""
    return int(
        _scalar(
            engine,
            "SELECT count(*) FROM job_runs WHERE state = 'succeeded' AND created_at > :since",
            since=since,
        )
    )


def first_success_after(engine: Engine, since: datetime) -> datetime | None:
    """When the first run fired after `since` finished successfully."""
    return _scalar(
        engine,
        "SELECT min(finished_at) FROM job_runs WHERE state = 'succeeded' AND created_at > :since",
        since=since,
    )


def run_ids(engine: Engine) -> set[int]:
    """Every run the database knows."""
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT id FROM job_runs")).scalars())


def unsettled(engine: Engine) -> list[tuple[int, str]]:
    """Runs not finished yet: (id, state)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, state FROM job_runs WHERE state = ANY(:s) ORDER BY id"),
            {"s": list(UNSETTLED)},
        )
        return [(r.id, r.state) for r in rows]


def stop_firing(engine: Engine) -> None:
    """Stop new fires and wait until the leader has the change (every fire is then recorded)."""
    set_cron(engine, STOPPED)
    wait_for(lambda: stored_jobs(engine)[JOB][0] == STOPPED, 30, "the leader to stop firing")


def now() -> datetime:
    return datetime.now(UTC)
