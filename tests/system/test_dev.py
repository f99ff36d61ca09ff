"""`srjobs dev --throwaway`: own Postgres and Redis, the whole stack, a run, a clean stop."""

import os
import signal
import socket
import subprocess
import sys
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from srjobs.dev import free_port
from tests.support.waiting import wait_for


@pytest.mark.skipif(
    os.geteuid() != 0 and not os.path.exists("/usr/lib/postgresql"),
    reason="needs PostgreSQL server binaries",
)
def test_dev_runs_the_stack_on_throwaway_servers_and_stops_cleanly(tmp_path):
    port = free_port()
    log = tmp_path / "dev.log"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(TRACE_SUMMARIES_CRON="@every 1s", PYTHONUNBUFFERED="1")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "srjobs.cli", "dev", "--throwaway", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"

        def succeeded():
            last = httpx.get(f"{base}/api/jobs", timeout=3).json()[0]["last_run"]
            return last if last and last["state"] == "succeeded" else None

        run = wait_for(succeeded, 90, "a succeeded run through srjobs dev", interval=0.3)
        assert run["trigger"] == "cron"
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 3
        # Its services use its own throwaway servers: a Redis child, a Postgres it started.
        assert "redis-server" in {c.name() for c in children}
        urls = {c.environ().get("DATABASE_URL") for c in children if c.name() != "redis-server"}
        pg_ports = {urlsplit(url).port for url in urls if url}
        assert pg_ports and None not in pg_ports and 5432 not in pg_ports
        for pg_port in pg_ports:
            socket.create_connection(("127.0.0.1", pg_port), 2).close()  # it answers
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
        assert proc.wait(30) == 0
        wait_for(
            lambda: not any(c.is_running() and c.status() != "zombie" for c in children),
            20,
            "every child process to exit",
        )
        for pg_port in pg_ports:
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", pg_port), 2).close()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
