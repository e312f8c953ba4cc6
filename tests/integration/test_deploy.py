"""deploy/: the Prometheus alert rules pass ``promtool`` (syntax and their unit tests), and the
rules and the Grafana dashboard name only metrics Interlink exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import interlink.metrics as metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULES_TEST = DEPLOY / "prometheus" / "alerts_test.yml"
DASHBOARD = DEPLOY / "grafana" / "interlink.json"
METRIC = re.compile(r"\binterlink_[a-z_]+\b")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}


def exported() -> set[str]:
    """Every series name /metrics can answer: the process's counters and histograms, and the
    backlog gauges."""
    assert metrics.DOCUMENTS is not None  # the module's collectors are registered on import
    names = set(metrics.BACKLOG_GAUGES)
    for family in REGISTRY.collect():
        if family.name.startswith("interlink_"):
            names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing; .ci/run installs Debian's prometheus package")
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args],
        cwd=RULES.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_promtool_checks_the_rules() -> None:
    done = run("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


def test_promtool_unit_tests_fire_the_alerts() -> None:
    done = run("test", "rules", RULES_TEST.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_unit_test() -> None:
    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"] for group in rules["groups"] for r in group["rules"]}
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULES_TEST.read_text())["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert alerts == tested


def test_rules_name_only_exported_metrics() -> None:
    rules = yaml.safe_load(RULES.read_text())
    used = {
        m for group in rules["groups"] for r in group["rules"] for m in METRIC.findall(r["expr"])
    }
    assert used and used <= exported(), sorted(used - exported())


def test_the_dashboard_loads_and_names_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    targets = [target for panel in dashboard["panels"] for target in panel.get("targets", [])]
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {"Pending", "Held by reason", "Outcomes", "Latency", "Circuits"} <= titles
    assert {"Maintenance windows", "Oldest pending", "Dead"} <= titles
    used = {m for target in targets for m in METRIC.findall(target["expr"])}
    assert used and used <= exported(), sorted(used - exported())
    # Every backlog gauge a person on duty needs is on the dashboard.
    assert {
        "interlink_deliveries_pending",
        "interlink_deliveries_held",
        "interlink_deliveries_dead",
        "interlink_oldest_pending_seconds",
        "interlink_circuit_open",
        "interlink_maintenance_window_open",
    } <= used
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
