"""Which Postgres and Redis the tests use: env URLs, then local defaults, then testcontainers."""

from __future__ import annotations

import os
from dataclasses import dataclass

from srjobs.dev import postgres_answers, redis_answers

LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


@dataclass
class Servers:
    pg_admin_url: str  # a URL to the server's `postgres` database
    redis_url: str
    source: str  # what was used, for the pytest header
    containers: list


def admin_url(database_url: str) -> str:
    """The same server's `postgres` database."""
    base = database_url.replace("postgres://", "postgresql://", 1)
    head, _, _ = base.partition("?")
    return head.rsplit("/", 1)[0] + "/postgres"


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


def pick_servers() -> Servers:
    """Env URLs (TEST_DATABASE_URL/DATABASE_URL, TEST_REDIS_URL/REDIS_URL), then local
    default ports, then testcontainers when Docker answers."""
    env_pg = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    env_redis = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL")
    sources, containers = [], []
    pg = redis_url = None
    if env_pg and postgres_answers(admin_url(env_pg)):
        pg, _ = admin_url(env_pg), sources.append("Postgres from the environment")
    elif postgres_answers(LOCAL_PG):
        pg, _ = LOCAL_PG, sources.append("local Postgres on 127.0.0.1:5432")
    if env_redis and redis_answers(env_redis):
        redis_url, _ = env_redis, sources.append("Redis from the environment")
    elif redis_answers(LOCAL_REDIS):
        redis_url, _ = LOCAL_REDIS, sources.append("local Redis on 127.0.0.1:6379")
    if (pg is None or redis_url is None) and _docker_available():
        if pg is None:
            from testcontainers.postgres import PostgresContainer

            c = PostgresContainer("postgres:15", driver=None).start()
            containers.append(c)
            pg = admin_url(c.get_connection_url())
            sources.append("Postgres from testcontainers")
        if redis_url is None:
            from testcontainers.redis import RedisContainer

            c = RedisContainer("redis:7").start()
            containers.append(c)
            redis_url = f"redis://{c.get_container_host_ip()}:{c.get_exposed_port(6379)}/0"
            sources.append("Redis from testcontainers")
    if pg is None or redis_url is None:
        missing = " and ".join(n for n, v in (("Postgres", pg), ("Redis", redis_url)) if v is None)
        raise RuntimeError(
            f"no {missing} for the tests: set TEST_DATABASE_URL/TEST_REDIS_URL, start local"
            " servers on the default ports, or make Docker available for testcontainers"
        )
    return Servers(pg, redis_url, ", ".join(sources), containers)
