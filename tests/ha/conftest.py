"""Fixtures of the failover tests: a Redis Sentinel group of their own."""

import pytest

from tests.support.ha import RedisGroup


@pytest.fixture
def redis_group(tmp_path):
    base = tmp_path / "redis"
    base.mkdir()
    group = RedisGroup(base)
    try:
        yield group.start()
    finally:
        group.stop()
