"""The shipped alerting rules load (`promtool check rules`) and their unit tests pass
(`promtool test rules`): every alert has a test file that makes it fire, and a test of when it
must not."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.deploy.promtool import promtool

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = PROMETHEUS / "ketenpoort-alerts.yml"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))


def _run(*args: str) -> str:
    done = subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_rules_load() -> None:
    out = _run("check", "rules", str(RULES))
    assert "SUCCESS" in out


def test_rule_unit_tests_pass() -> None:
    assert RULE_TESTS
    out = _run("test", "rules", *map(str, RULE_TESTS))
    assert out.count("SUCCESS") == len(RULE_TESTS), out


def test_every_alert_has_a_unit_test_that_makes_it_fire() -> None:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    fired: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    fired.add(check["alertname"])
    untested = sorted(alerts - fired)
    assert not untested, f"alerts without a promtool test that fires them: {untested}"


def test_every_alert_names_its_runbook_section() -> None:
    runbook = (RULES.parents[2] / "docs" / "operations" / "alerts.md").read_text(encoding="utf-8")
    headings = {h.strip().lower() for h in re.findall(r"^#+\s+(\S+)", runbook, re.MULTILINE)}
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule["alert"]
            assert rule["annotations"]["runbook"] == f"docs/operations/alerts.md#{name.lower()}"
            assert name.lower() in headings, f"docs/operations/alerts.md has no section {name}"

