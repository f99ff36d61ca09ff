"""deploy/: the Prometheus rules pass promtool, and every expression there and in the Grafana
dashboard names a series that srjobs' three services actually export."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import scheduler.metrics
import worker.metrics
from webadmin import job_metrics
from webadmin.metrics import make_registry

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "srjobs-dashboard.json"
SERIES = re.compile(r"\bsrjobs_[a-z_]+")
PROMTOOL = shutil.which("promtool")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported() -> set[str]:
    """The series names the scheduler, the worker and the admin expose."""
    assert scheduler.metrics.LEADER and worker.metrics.RUNS  # imported: registered
    admin_registry, _ = make_registry()
    names = set(job_metrics.NAMES)
    for registry in (REGISTRY, admin_registry):
        for family in registry.collect():
            for suffix in SUFFIXES.get(family.type, ("",)):
                names.add(family.name + suffix)
    return names


def rule_expressions() -> list[str]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in doc["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in doc["panels"] for t in panel.get("targets", [])]


def test_rules_and_dashboard_name_only_exported_series():
    known = exported()
    assert {"srjobs_scheduler_leader", "srjobs_worker_runs_total"} <= known
    for expressions in (rule_expressions(), dashboard_expressions()):
        assert expressions
        unknown = {n for e in expressions for n in SERIES.findall(e)} - known
        assert unknown == set(), f"not exported by any service: {sorted(unknown)}"
    names = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    for wanted in ("Stale", "Failing", "NoSchedulerLeader", "OutboxBacklog", "NoLiveWorker"):
        assert any(wanted in name for name in names), wanted


@pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed: `apt-get install -y prometheus` (.ci/run does it)",
)
def test_promtool_checks_and_unit_tests_the_rules():
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts_test.yml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=RULES.parent,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
