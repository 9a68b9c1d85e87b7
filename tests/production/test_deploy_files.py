"""The shipped Prometheus, compose and alert files refer to what the service really exports and runs."""
import re
from pathlib import Path

import yaml

from tests.production.test_metrics import EXPECTED_SAMPLE_NAMES

ROOT = Path(__file__).resolve().parents[2]


def test_alert_rules_use_only_exported_metric_names():
    rules = [
        rule for group in yaml.safe_load((ROOT / "deploy/alerts.yml").read_text())["groups"] for rule in group["rules"]
    ]
    alerts = {rule["alert"]: rule for rule in rules}
    assert alerts["CertctlNotificationsDeadLettered"]["expr"] == "certctl_notification_dead_unacknowledged > 0"
    assert alerts["CertctlNotificationsDeadLettered"]["labels"]["severity"] == "warning"
    assert alerts["CertctlNotificationsDeadLetteredMany"]["expr"] == "certctl_notification_dead_unacknowledged > 10"
    assert alerts["CertctlNotificationsDeadLetteredMany"]["labels"]["severity"] == "critical"
    assert alerts["CertctlNotificationRetriesStuck"]["expr"] == (
        "certctl_notification_oldest_due_retry_age_seconds > 15 * 60"
    )
    used = {name for rule in rules for name in re.findall(r"\bcertctl_[a-z_]+", rule["expr"])}
    assert used <= EXPECTED_SAMPLE_NAMES


def test_compose_runs_web_workers_and_prometheus_from_one_image():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "prometheus"} <= set(compose)
    assert compose["web"]["command"] == ["gunicorn", "-c", "gunicorn.conf.py", "certctl.wsgi"]
    assert compose["web"]["environment"]["WEB_CONCURRENCY"] == "2"
    assert compose["worker"]["command"] == ["python", "manage.py", "qcluster"]
    assert "ports" not in compose["worker"]  # scalable: no fixed host port
    for service in ("web", "worker"):
        assert compose[service]["environment"]["REDIS_URL"].startswith("redis://redis:")
        assert compose[service]["environment"]["DATABASE_URL"].startswith("postgres://")
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    (job,) = prometheus["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["web:8000"]
    assert job["authorization"]["type"] == "Bearer"
