"""A throwaway migrated database and Redis namespace for one benchmark, always cleaned up;
the command line every module shares."""

from __future__ import annotations

import argparse
import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg2
import redis
from psycopg2 import sql

from shared.db import dsn
from shared.migrate import migrate
from shared.settings import Settings


def drop_database(database_url: str) -> None:
    """Drop the URL's database, connections and all."""
    base, _, name = dsn(database_url).rpartition("/")
    conn = psycopg2.connect(base + "/postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        conn.close()


def flush_namespace(redis_url: str, namespace: str) -> None:
    """Delete every Redis key of a benchmark's namespace."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(f"{namespace}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


@contextmanager
def bench_settings(prefix: str, **overrides) -> Iterator[Settings]:
    """Settings for a fresh database `<prefix>_<hex>` and namespace; both removed at exit."""
    base = Settings.from_env(os.environ)
    tag = uuid.uuid4().hex[:8]
    name = f"{prefix}_{tag}"
    url = dsn(base.database_url).rsplit("/", 1)[0] + f"/{name}"
    values = dict(
        database_url=url,
        redis_url=base.redis_url,
        redis_namespace=f"{prefix}-{tag}",
        node_name=f"{prefix}-{tag}",
    )
    values.update(overrides)
    settings = Settings(**values)
    try:
        migrate(settings, [])
        yield settings
    finally:
        drop_database(url)
        flush_namespace(settings.redis_url, settings.redis_namespace)


def cli(doc: str | None, run: Callable[[bool], list[dict]], quick_help: str) -> int:
    """A module's command line: `python -m bench.<module> [--quick]` prints its rows as JSON."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    args = parser.parse_args()
    for row in run(args.quick):
        print(json.dumps(row, default=str))
    return 0
