"""Throwaway Postgres and Redis servers a test may stop and restart (never the shared ones)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest
import redis

from srjobs.dev import free_port, pg_binaries
from tests.support.waiting import wait_for

PG_BIN = pg_binaries() or Path("/usr/lib/postgresql/15/bin")


class ThrowawayRedis:
    """`redis-server` on a free port, without persistence."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> ThrowawayRedis:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, 10, f"redis on port {self.port}")
        return self

    def _answers(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


def postgres_available() -> bool:
    return (PG_BIN / "initdb").exists() and shutil.which("runuser") is not None


class ThrowawayPostgres:
    """A Postgres cluster of its own in `base` (initdb as user postgres), on a free port."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "data"
        self.port = free_port()
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/srjobs"

    def _as_postgres(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def init(self) -> ThrowawayPostgres:
        self.base.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.base, "postgres", "postgres")
        os.chmod(self.base, 0o700)
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N"
        )
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.base / "log"),
            "-o",
            options,
            "-w",
            "start",
        )
        wait_for(self._answers, 30, f"postgres on port {self.port}")

    def restart(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        self.start()

    def _answers(self) -> bool:
        psycopg2.connect(self.admin_url, connect_timeout=2).close()
        return True

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._as_postgres(
                str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
            )


@contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """A started throwaway cluster in a temporary directory; stopped and removed at exit."""
    if not postgres_available():
        pytest.skip("no PostgreSQL server binaries (initdb) or runuser on this machine")
    base = Path(tempfile.mkdtemp(prefix="srjobs-pg-"))
    server = ThrowawayPostgres(base)
    try:
        server.init().start()
        yield server
    finally:
        try:
            server.stop()
        except subprocess.SubprocessError:
            pass
        shutil.rmtree(base, ignore_errors=True)
