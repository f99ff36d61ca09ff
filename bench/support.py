"""A throwaway migrated database and Redis namespace for one benchmark, always cleaned up."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import redis
from psycopg2 import sql

from shared.db import dsn
from shared.migrate import migrate
from shared.settings import Settings


def _admin(database_url: str):
    conn = psycopg2.connect(dsn(database_url).rsplit("/", 1)[0] + "/postgres")
    conn.autocommit = True
    return conn


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
        conn = _admin(url)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        finally:
            conn.close()
        client = redis.Redis.from_url(settings.redis_url)
        try:
            keys = list(client.scan_iter(f"{settings.redis_namespace}*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
