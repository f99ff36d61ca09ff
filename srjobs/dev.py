"""`srjobs dev`: migrate, then run scheduler, worker and admin together until Ctrl-C.

Uses DATABASE_URL / REDIS_URL when set, else the local default ports; when nothing answers
there, starts throwaway Postgres and Redis servers from binaries on this machine.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import redis

from shared.brokers import parse_redis_url, redis_client
from shared.db import dsn
from shared.settings import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL
from shared.signals import act_soon

STOP_SECONDS = 10
POLL_SECONDS = 0.5  # how often the services are checked
EXIT_GRACE_SECONDS = 5.0  # a service that exits this close to a stop signal was stopped


def say(message: str) -> None:
    print(f"srjobs dev: {message}", flush=True)


def free_port() -> int:
    """A free TCP port on loopback (the one helper srjobs, its tests and benchmarks use)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_answers(url: str) -> bool:
    try:
        admin = dsn(url).rsplit("/", 1)[0] + "/postgres"
        psycopg2.connect(admin, connect_timeout=3).close()
        return True
    except psycopg2.Error:
        return False


def redis_answers(url: str) -> bool:
    if parse_redis_url(url) is not None:  # a Sentinel group: ask for its primary
        client = redis_client(url, socket_timeout=3, socket_connect_timeout=3)
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 3) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"srjobs dev: {what} did not come up within {seconds:.0f}s")
        time.sleep(0.2)


def pg_binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def start_postgres(stack: ExitStack, workdir: Path) -> str:
    bindir = pg_binaries()
    if bindir is None:
        raise SystemExit(
            "srjobs dev: no Postgres answers and no initdb was found; install PostgreSQL or"
            " run `docker compose up`"
        )
    data = workdir / "pg"
    port = free_port()
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(workdir, "postgres")
    subprocess.run(
        [
            *run_as,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=120,
    )
    pg_ctl = [*run_as, str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [
            *pg_ctl,
            "-o",
            f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1",
            "-l",
            str(workdir / "pg.log"),
            "-w",
            "start",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=120,
    )
    stack.callback(
        subprocess.run, [*pg_ctl, "-m", "fast", "-w", "stop"], stdout=subprocess.DEVNULL, timeout=60
    )
    say(f"started a throwaway PostgreSQL on 127.0.0.1:{port} (data in {data})")
    return f"postgresql://postgres@127.0.0.1:{port}/srjobs"


def start_redis(stack: ExitStack, workdir: Path) -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit(
            "srjobs dev: no Redis answers and no redis-server was found; install Redis or"
            " run `docker compose up`"
        )
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches the services first; Redis stops after them
    )
    stack.callback(stop_process, proc)
    url = f"redis://127.0.0.1:{port}/0"
    wait_until(lambda: redis_answers(url), 20, "redis-server")
    say(f"started a throwaway Redis on 127.0.0.1:{port}")
    return url


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="srjobs dev", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="admin port (default 8000)")
    parser.add_argument(
        "--throwaway",
        action="store_true",
        help="always start throwaway Postgres and Redis servers, even if local ones answer",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    env = dict(os.environ)
    port = args.port
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="srjobs-dev-")))
        db = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        if args.throwaway:
            db = start_postgres(stack, workdir)
        elif not postgres_answers(db):
            if env.get("DATABASE_URL"):
                raise SystemExit("srjobs dev: DATABASE_URL does not answer")
            db = start_postgres(stack, workdir)
        redis_url = env.get("REDIS_URL") or DEFAULT_REDIS_URL
        if args.throwaway:
            redis_url = start_redis(stack, workdir)
        elif not redis_answers(redis_url):
            if env.get("REDIS_URL"):
                raise SystemExit("srjobs dev: REDIS_URL does not answer")
            redis_url = start_redis(stack, workdir)
        env.update(DATABASE_URL=db, REDIS_URL=redis_url)
        say("migrating")
        subprocess.run(
            [sys.executable, "-m", "srjobs.cli", "migrate"], env=env, check=True, timeout=300
        )
        procs = [
            subprocess.Popen([sys.executable, "-m", "srjobs.cli", *cmd], env=env)
            for cmd in (
                ["scheduler"],
                ["worker", "--processes", "1", "--threads", "4"],
                ["webadmin", "--port", str(port)],
            )
        ]
        for proc in procs:
            stack.callback(stop_process, proc)
        say(f"admin at http://127.0.0.1:{port}/jobs  (Ctrl-C stops everything)")
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: act_soon(stop.set))
        while not stop.wait(POLL_SECONDS):
            if any(p.poll() is not None for p in procs):
                # Ctrl-C reaches the services too: one may exit before this process runs its
                # own handler. Only a service that exits on its own is a failure.
                if stop.wait(EXIT_GRACE_SECONDS):
                    break
                say("a service exited; stopping the others")
                return 1
        say("stopping")
        return 0
