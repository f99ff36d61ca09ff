"""Failover of the stores: a Redis primary killed -9 (Sentinel promotes its replica) and a
Postgres primary killed -9 (its synchronous replica promoted with `pg_ctl promote`), under two
schedulers and two workers firing every second; the time to the first run fired after the
kill that succeeds. Uses the servers of tests/support/ha.py, on free loopback ports."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from bench.scheduler_harness import row
from bench.support import bench_settings, flush_namespace
from shared.db import make_engine
from shared.settings import Settings
from tests.support.ha import (
    DOWN_AFTER_MS,
    PostgresPair,
    RedisGroup,
    first_success_after,
    now,
    start_cluster,
    succeeded_since,
)
from tests.support.procs import Services
from tests.support.schedulers import set_cron
from tests.support.waiting import wait_for

COMMAND = "python -m bench ha_failover"


def env_of(settings: Settings) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "SRJOBS_REDIS_NAMESPACE": settings.redis_namespace,
        "PYTHONUNBUFFERED": "1",
    }


def time_to_success(engine, kill) -> tuple[float, float]:
    """Run `kill` (returns when the new primary is in place); (s from the kill, s from the
    moment `kill` returned) to the first succeeded run fired after the kill."""
    killed_at = now()
    kill()
    in_place: datetime = now()
    first = wait_for(lambda: first_success_after(engine, killed_at), 60, "a run after the kill")
    wait_for(lambda: succeeded_since(engine, first) >= 2, 30, "firing to go on")
    return (first - killed_at).total_seconds(), (first - in_place).total_seconds()


def redis_failovers(rounds: int, workdir: Path) -> list[float]:
    group = RedisGroup(workdir)
    with bench_settings("bench_ha_redis") as base:
        services = Services({}, workdir)
        engine = make_engine(base)
        try:
            group.start()
            services.env = env_of(replace(base, redis_url=group.url))
            assert services.run("migrate").returncode == 0  # seeds the schedules
            set_cron(engine, "@every 1s")
            start_cluster(services)
            started = now()
            wait_for(lambda: succeeded_since(engine, started) >= 2, 90, "runs before the kill")
            times = []
            for _ in range(rounds):
                old = group.primary()
                took, _ = time_to_success(engine, group.kill_primary)
                times.append(took)
                assert old is not None
                group.revive(old)
                wait_for(group.settled, 60, "the old primary to rejoin as a replica")
            return times
        finally:
            services.stop_all()
            engine.dispose()
            group.stop()


def postgres_failover(workdir: Path) -> tuple[float, float]:
    """One synchronous pair, killed and promoted once: (s from the kill, s from promotion)."""
    pair = PostgresPair(synchronous=True)
    services = Services({}, workdir)
    tag = uuid.uuid4().hex[:8]
    settings = replace(
        Settings.from_env(os.environ),
        database_url=pair.url,
        redis_namespace=f"bench-ha-pg-{tag}",
        node_name=f"bench-ha-pg-{tag}",
    )
    engine = make_engine(settings)
    try:
        pair.start()
        services.env = env_of(settings)
        assert services.run("migrate").returncode == 0
        set_cron(engine, "@every 1s")
        start_cluster(services)
        started = now()
        wait_for(lambda: succeeded_since(engine, started) >= 2, 90, "runs before the kill")

        def kill_and_promote() -> None:
            pair.kill_primary()
            pair.promote()

        return time_to_success(engine, kill_and_promote)
    finally:
        services.stop_all()
        engine.dispose()
        pair.stop()
        flush_namespace(settings.redis_url, settings.redis_namespace)


def postgres_failovers(rounds: int, workdir: Path) -> tuple[list[float], list[float]]:
    from_kill, from_promotion = [], []
    for n in range(rounds):
        (workdir / str(n)).mkdir()
        took, after_promotion = postgres_failover(workdir / str(n))
        from_kill.append(took)
        from_promotion.append(after_promotion)
    return from_kill, from_promotion


def seconds(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.2f} s, min {min(values):.2f} s,"
        f" max {max(values):.2f} s (n={len(values)})"
    )


def run(quick: bool) -> list[dict]:
    redis_rounds, pg_rounds = (2, 1) if quick else (5, 3)
    with tempfile.TemporaryDirectory(prefix="srjobs-bench-ha-") as tmp:
        redis_dir, pg_dir = Path(tmp) / "redis", Path(tmp) / "pg"
        redis_dir.mkdir()
        pg_dir.mkdir()
        redis_times = redis_failovers(redis_rounds, redis_dir)
        pg_kill, pg_promoted = postgres_failovers(pg_rounds, pg_dir)
    redis_goal = DOWN_AFTER_MS / 1000 + 3
    return [
        row(
            "Redis Sentinel failover (primary kill -9 -> first succeeded run fired after it)",
            f"max < down-after-milliseconds + 3 s = {redis_goal:.0f} s"
            f" (down-after-milliseconds {DOWN_AFTER_MS} ms)",
            f"{seconds(redis_times)};"
            f" {'meets' if max(redis_times) < redis_goal else 'misses'} the target",
            "2 schedulers, 2 workers, @every 1s",
            COMMAND,
        ),
        row(
            "Postgres failover (primary kill -9, replica promoted -> first succeeded run)",
            "max < 5 s after the promotion",
            f"after the promotion: {seconds(pg_promoted)}; from the kill: {seconds(pg_kill)};"
            f" {'meets' if max(pg_promoted) < 5 else 'misses'} the target",
            "synchronous replication, 2 schedulers, 2 workers, @every 1s",
            COMMAND,
        ),
    ]


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
