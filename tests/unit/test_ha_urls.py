"""The high-availability URL forms: a Sentinel group in REDIS_URL, several hosts in DATABASE_URL."""

import pytest
from sqlalchemy.dialects.postgresql.psycopg2 import PGDialect_psycopg2

from shared.brokers import SentinelGroup, SentinelRedis, parse_redis_url, redis_client
from shared.db import dsn, safe_url, sqlalchemy_url
from shared.errors import ConfigError
from shared.pg_url import parse_database_url
from shared.settings import Settings

MULTI = "postgresql://u:p%40ss@h1:5432,h2:5433/jobs?target_session_attrs=read-write"


def test_a_plain_redis_url_is_not_a_group():
    assert parse_redis_url("redis://127.0.0.1:6379/0") is None
    assert parse_redis_url("rediss://:pw@cache:6380/1") is None
    assert parse_redis_url("unix:///run/redis.sock") is None


def test_a_sentinel_url_names_the_sentinels_service_db_and_password():
    group = parse_redis_url("redis+sentinel://:s%40cret@10.0.0.1:26379,sentinel-b:26380/mymaster/3")
    assert group == SentinelGroup(
        sentinels=(("10.0.0.1", 26379), ("sentinel-b", 26380)),
        service="mymaster",
        db=3,
        password="s@cret",
    )


def test_a_sentinel_url_defaults_the_db_and_the_sentinel_port():
    group = parse_redis_url("redis+sentinel://s1,s2:26400/svc")
    assert group == SentinelGroup(sentinels=(("s1", 26379), ("s2", 26400)), service="svc")


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://s1:26379",  # no service
        "redis+sentinel://s1:26379/",  # no service
        "redis+sentinel:///svc",  # no sentinel
        "redis+sentinel://s1:26379/svc/zero",  # db not a number
        "redis+sentinel://s1:26379/svc/0/extra",
        "redis+sentinel://s1:port/svc",
        "redis+sentinel://s1:70000/svc",
        "http://cache:6379",
    ],
)
def test_unusable_redis_urls_are_refused_naming_the_variable(url):
    with pytest.raises(ConfigError, match="REDIS_URL"):
        parse_redis_url(url)
    with pytest.raises(ConfigError, match="REDIS_URL"):
        Settings.from_env({"REDIS_URL": url})


def test_settings_accept_both_high_availability_forms():
    s = Settings.from_env(
        {"REDIS_URL": "redis+sentinel://s1:26379,s2:26379/mymaster/0", "DATABASE_URL": MULTI}
    )
    assert s.redis_url.startswith("redis+sentinel://") and s.database_url == MULTI


def test_a_sentinel_client_connects_lazily_to_the_groups_primary():
    client = redis_client("redis+sentinel://:pw@127.0.0.1:1,127.0.0.1:2/svc/4", socket_timeout=1)
    try:
        assert isinstance(client, SentinelRedis)
        pool = client.connection_pool
        assert pool.service_name == "svc"
        assert pool.connection_kwargs["db"] == 4 and pool.connection_kwargs["password"] == "pw"
        sentinels = client.sentinels
        assert sentinels is not None
        ports = [s.connection_pool.connection_kwargs["port"] for s in sentinels.sentinels]
        assert ports == [1, 2]
    finally:
        client.close()


def test_several_postgres_hosts_reach_libpq_unchanged():
    assert dsn(MULTI) == MULTI
    target = parse_database_url(MULTI)
    assert target.hosts == (("h1", 5432), ("h2", 5433)) and target.password == "p@ss"


def test_several_postgres_hosts_reach_sqlalchemy_in_its_multihost_form():
    url = sqlalchemy_url(MULTI)
    assert url.drivername == "postgresql+psycopg2" and url.database == "jobs"
    _, kwargs = PGDialect_psycopg2().create_connect_args(url)
    assert kwargs["host"] == "h1,h2" and kwargs["port"] == "5432,5433"
    assert kwargs["target_session_attrs"] == "read-write" and kwargs["password"] == "p@ss"
    assert "p@ss" not in safe_url(MULTI) and "p%40ss" not in safe_url(MULTI)


def test_a_host_without_a_port_gets_libpqs_default_in_sqlalchemy():
    _, kwargs = PGDialect_psycopg2().create_connect_args(
        sqlalchemy_url("postgresql://u@a,b:6000/d")
    )
    assert kwargs["host"] == "a,b" and kwargs["port"] == "5432,6000"
    assert dsn("postgresql://u@a,b:6000/d") == "postgresql://u@a,b:6000/d"


def test_one_postgres_host_keeps_its_host_and_port():
    url = sqlalchemy_url("postgres://u@db:5433/x?sslmode=require")
    assert (url.host, url.port, url.database) == ("db", 5433, "x")
    assert url.query == {"sslmode": "require"}
    assert dsn("postgres://u@db:5433/x?sslmode=require") == (
        "postgresql://u@db:5433/x?sslmode=require"
    )


@pytest.mark.parametrize(
    "url", ["mysql://x/y", "postgresql://u@h1:5432,:5433/db", "postgresql://u@h1:port/db"]
)
def test_unusable_database_urls_are_refused_naming_the_variable(url):
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Settings.from_env({"DATABASE_URL": url})


def test_a_service_names_where_redis_is_without_the_password():
    from shared.brokers import redis_location
    from shared.dependencies import redis_server

    url = "redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2/srjobs/2"
    assert redis_location(url) == "srjobs via 10.0.0.1:26379,10.0.0.2:26379"
    assert redis_server(Settings(redis_url=url)).where == redis_location(url)
    assert redis_location("redis://:pw@cache:6380/0") == "cache:6380"
    assert redis_location("unix:///run/redis.sock") == "/run/redis.sock"
