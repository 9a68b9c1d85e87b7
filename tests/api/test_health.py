"""/health and /ready: no authentication, JSON, 503 with a reason when the database is gone."""
import pytest
from django.db import OperationalError
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_health_needs_no_key():
    response = APIClient().get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert response["X-Request-ID"]


def test_ready_when_the_database_answers():
    response = APIClient().get("/ready")
    assert (response.status_code, response.json()) == (200, {"status": "ready"})


def test_ready_is_503_with_a_reason_when_the_database_is_unreachable(monkeypatch, caplog):
    def unreachable():
        raise OperationalError('connection to server at "db.internal" (10.0.0.5), port 5432 failed')

    monkeypatch.setattr("certctl.health.connection.cursor", unreachable)
    response = APIClient().get("/ready", headers={"X-Request-ID": "probe-1"})
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["reason"].startswith("database unreachable (OperationalError)")
    assert "probe-1" in body["reason"]
    assert "db.internal" not in body["reason"]  # details go to the log, not to anonymous callers
    assert "db.internal" in caplog.text
