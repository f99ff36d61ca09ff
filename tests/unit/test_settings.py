from dataclasses import fields

import pytest

from shared.db import safe_url, sqlalchemy_url
from shared.errors import ConfigError
from shared.settings import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, Settings


def test_defaults_follow_the_contract():
    s = Settings.from_env({})
    assert s.database_url == DEFAULT_DATABASE_URL == "postgresql://postgres@127.0.0.1:5432/srjobs"
    assert s.redis_url == DEFAULT_REDIS_URL == "redis://127.0.0.1:6379/0"
    assert s.trace_summaries_cron == "*/2 * * * *"
    assert s.admin_user == "admin"
    assert s.admin_password is None
    assert s.log_format == "text"
    host, _, pid = s.node_name.rpartition("-")
    assert host and pid.isdigit()


def test_values_are_read_from_the_mapping():
    s = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u:secret@db:5433/x",
            "REDIS_URL": "redis://cache:6380/2",
            "NODE_NAME": "node-a",
            "TRACE_SUMMARIES_CRON": "@every 30s",
            "ADMIN_PASSWORD": "pw",
            "ADMIN_USER": "ops",
            "LOG_FORMAT": "json",
            "SRJOBS_LEADER_LEASE_SECONDS": "3",
            "SRJOBS_JOB_MODULES": "a.jobs, b.jobs",
        }
    )
    assert (s.node_name, s.trace_summaries_cron, s.admin_user) == ("node-a", "@every 30s", "ops")
    assert s.admin_password == "pw" and "pw" not in repr(s)
    assert s.log_format == "json"
    assert s.leader_lease_seconds == 3.0
    assert s.leader_check_seconds == 1.0
    assert s.job_modules == ("a.jobs", "b.jobs")


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"SRJOBS_LEADER_LEASE_SECONDS": "soon"}, "SRJOBS_LEADER_LEASE_SECONDS"),
        ({"SRJOBS_LEADER_LEASE_SECONDS": "0.1"}, "SRJOBS_LEADER_LEASE_SECONDS"),
        ({"SRJOBS_RUN_RETENTION_DAYS": "-1"}, "SRJOBS_RUN_RETENTION_DAYS"),
    ],
)
def test_bad_values_fail_naming_the_variable(env, name):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(env)


def test_urls_map_to_psycopg2_and_hide_the_password():
    url = sqlalchemy_url("postgresql://u:secret@db:5432/x")
    assert url.drivername == "postgresql+psycopg2"
    assert sqlalchemy_url("postgres://u@db/x").drivername == "postgresql+psycopg2"
    assert "secret" not in safe_url("postgresql://u:secret@db:5432/x")


def test_repr_never_shows_credentials():
    s = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u:pgsecret@db/x",
            "REDIS_URL": "redis://:rsecret@r:6379/0",
            "ADMIN_PASSWORD": "adminsecret",
        }
    )
    assert not {"pgsecret", "rsecret", "adminsecret"} & set(repr(s).replace("'", " ").split())
    assert "secret" not in repr(s)


def test_every_field_is_read_from_its_own_variable():
    names = [f.metadata.get("env") for f in fields(Settings)]
    assert None not in names, "a field without a variable"
    assert len(names) == len(set(names)), "two fields read the same variable"


def test_from_env_with_nothing_set_equals_the_dataclass_defaults():
    built, read = Settings(node_name="n"), Settings.from_env({"NODE_NAME": "n"})
    assert built == read
    assert read.startup_timeout_seconds == 60


@pytest.mark.parametrize(
    ("lease", "override", "expected"),
    [(5.0, None, 1.0), (3.0, None, 1.0), (1.5, None, 0.5), (5.0, 0.2, 0.2)],
)
def test_leader_check_is_derived_from_the_lease_unless_set(lease, override, expected):
    direct = Settings(leader_lease_seconds=lease, leader_check_override=override)
    env = {"SRJOBS_LEADER_LEASE_SECONDS": str(lease)}
    if override is not None:
        env["SRJOBS_LEADER_CHECK_SECONDS"] = str(override)
    assert direct.leader_check_seconds == pytest.approx(expected)
    assert Settings.from_env(env).leader_check_seconds == pytest.approx(expected)


def test_peer_staleness_follows_the_lease():
    assert Settings(leader_lease_seconds=5).peer_stale_seconds == 7
    assert Settings(leader_lease_seconds=10).peer_stale_seconds == 12


@pytest.mark.parametrize(
    ("values", "name"),
    [
        ({"worker_dead_seconds": 1}, "SRJOBS_WORKER_DEAD_SECONDS"),
        ({"leader_lease_seconds": 0.5}, "SRJOBS_LEADER_LEASE_SECONDS"),
        ({"startup_timeout_seconds": -1}, "SRJOBS_STARTUP_TIMEOUT_SECONDS"),
        ({"log_format": "xml"}, "LOG_FORMAT"),
        ({"database_url": "mysql://x"}, "DATABASE_URL"),
        ({"redis_url": "http://x"}, "REDIS_URL"),
    ],
)
def test_validation_runs_however_settings_is_built(values, name):
    with pytest.raises(ConfigError, match=name):
        Settings(**values)


def test_startup_timeout_is_read_and_checked():
    env = {"SRJOBS_STARTUP_TIMEOUT_SECONDS": "2.5"}
    assert Settings.from_env(env).startup_timeout_seconds == 2.5
    assert Settings.from_env({"SRJOBS_STARTUP_TIMEOUT_SECONDS": "0"}).startup_timeout_seconds == 0
    with pytest.raises(ConfigError, match="SRJOBS_STARTUP_TIMEOUT_SECONDS"):
        Settings.from_env({"SRJOBS_STARTUP_TIMEOUT_SECONDS": "soon"})


def test_alert_settings_are_read_and_checked():
    s = Settings.from_env(
        {
            "SRJOBS_ALERT_WEBHOOK_URLS": " https://hooks.example.com/T/abc , http://10.0.0.5:8080/h",
            "SRJOBS_ALERT_WEBHOOK_SECRET": "hmac-key",
            "SRJOBS_ADMIN_URL": "https://srjobs.example.com/",
        }
    )
    assert s.alert_webhook_urls == ("https://hooks.example.com/T/abc", "http://10.0.0.5:8080/h")
    assert s.admin_url == "https://srjobs.example.com"
    assert "hmac-key" not in repr(s) and "abc" not in repr(s)
    assert Settings.from_env({}).alert_webhook_urls == ()
    for bad in ("ftp://x/y", "hooks.example.com/x", "https://", "javascript:alert(1)"):
        with pytest.raises(ConfigError, match="SRJOBS_ALERT_WEBHOOK_URLS"):
            Settings.from_env({"SRJOBS_ALERT_WEBHOOK_URLS": bad})
    with pytest.raises(ConfigError, match="SRJOBS_ADMIN_URL"):
        Settings.from_env({"SRJOBS_ADMIN_URL": "srjobs.example.com"})
    with pytest.raises(ConfigError, match="SRJOBS_ALERT_RETRY_SECONDS"):
        Settings.from_env({"SRJOBS_ALERT_RETRY_SECONDS": "soon"})
