"""The deployment files: compose.yaml parses as the compose format; the image runs as non-root."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose (Debian package) is not installed: .ci/run installs it",
)
def test_compose_file_validates():
    env = {"PATH": "/usr/bin:/bin", "ADMIN_PASSWORD": "x"}
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    config = result.stdout
    for service in ("postgres:", "redis:", "migrate:", "scheduler:", "worker:", "webadmin:"):
        assert service in config
    assert "service_completed_successfully" in config  # the one-shot migrate goes first
    # srjobs services wait for Postgres and Redis themselves, not on their health checks.
    services = yaml.safe_load(config)["services"]
    for name in ("migrate", "scheduler", "worker", "webadmin"):
        conditions = [d.get("condition") for d in services[name].get("depends_on", {}).values()]
        assert "service_healthy" not in conditions, name
    assert "replicas: 2" in config


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose missing")
def test_compose_refuses_to_run_the_admin_without_a_password():
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
        cwd=ROOT,
    )
    assert result.returncode != 0 and "ADMIN_PASSWORD" in result.stderr


def test_image_runs_as_a_non_root_user_without_build_tools():
    dockerfile = (ROOT / "Dockerfile").read_text()
    final_stage = dockerfile.rsplit("FROM ", 1)[1]
    assert "USER srjobs" in final_stage
    assert "slim" in final_stage.splitlines()[0]
    assert "gcc" not in final_stage and "build-essential" not in final_stage


def test_env_example_names_the_secrets_and_is_not_ignored():
    example = (ROOT / ".env.example").read_text()
    assert "ADMIN_PASSWORD=" in example and "POSTGRES_PASSWORD=" in example
    assert ".env\n" in (ROOT / ".gitignore").read_text()


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose missing")
def test_the_ha_profile_adds_a_sentinel_group_that_the_services_use():
    env = {
        "PATH": "/usr/bin:/bin",
        "ADMIN_PASSWORD": "x",
        "REDIS_URL": "redis+sentinel://sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/srjobs/0",
    }
    command = ["docker-compose", "-f", str(ROOT / "compose.yaml")]

    def services(*options: str) -> dict:
        result = subprocess.run(
            [*command, *options, "config"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=ROOT,
        )
        assert result.returncode == 0, result.stderr
        return yaml.safe_load(result.stdout)["services"]

    ha = services("--profile", "ha")
    added = {"redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"}
    assert {name for name, spec in ha.items() if spec.get("profiles") == ["ha"]} == added
    assert "--replicaof" in ha["redis-replica"]["command"]
    for name in ("sentinel-1", "sentinel-2", "sentinel-3"):
        assert "sentinel monitor srjobs redis 6379 2" in " ".join(ha[name]["command"])
    for name in ("migrate", "scheduler", "worker", "webadmin"):
        assert ha[name]["environment"]["REDIS_URL"] == env["REDIS_URL"]
        Settings.from_env(ha[name]["environment"])  # a URL srjobs accepts
