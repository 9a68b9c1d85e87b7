"""One error shape under /api/, the X-Request-ID header, and the request id in log lines."""
import logging

import pytest
from rest_framework.test import APIClient

from certctl.middleware import RequestIDLogFilter
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def log_records():
    """Records as the configured console handler sees them (after its request-id filter)."""
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Collect(level=logging.DEBUG)
    handler.addFilter(RequestIDLogFilter())
    loggers = [logging.getLogger(name) for name in ("notifications", "certctl", "django.request")]
    for logger in loggers:
        logger.addHandler(handler)
    yield records
    for logger in loggers:
        logger.removeHandler(handler)


def test_a_well_formed_incoming_request_id_is_kept(admin):
    response = admin.get("/api/v1/notifications", headers={"X-Request-ID": "trace-42.a:b_c"})
    assert response["X-Request-ID"] == "trace-42.a:b_c"


@pytest.mark.parametrize("incoming", ["", "has space", "x" * 129, "semi;colon", "<script>"])
def test_a_malformed_incoming_request_id_is_replaced(admin, incoming):
    response = admin.get("/api/v1/notifications/notif-none", headers={"X-Request-ID": incoming})
    generated = response["X-Request-ID"]
    assert generated != incoming
    assert len(generated) == 32
    assert response.json()["request_id"] == generated


@pytest.mark.parametrize("path", ["/health", "/ready", "/api/v1/schema", "/api/v1/nothing", "/api/v1/notifications"])
def test_every_response_carries_a_request_id(path):
    assert APIClient().get(path)["X-Request-ID"]


def test_the_request_id_is_on_the_log_lines_of_that_request(admin, dead_event, log_records):
    admin.post(f"/api/v1/notifications/{dead_event.id}/requeue", headers={"X-Request-ID": "req-requeue-1"})
    admin.get("/api/v1/notifications/notif-none", headers={"X-Request-ID": "req-missing-2"})
    by_logger = {}
    for record in log_records:
        by_logger.setdefault(record.name, set()).add((record.request_id, record.getMessage().split(" ")[0]))
    assert ("req-requeue-1", "requeued") in by_logger["notifications.services"]
    assert ("req-requeue-1", "POST") in by_logger["certctl.request"]
    assert ("req-missing-2", "Not") in by_logger["django.request"]  # logged after the middleware returned


def test_an_unexpected_error_is_a_json_500_with_the_request_id(admin, monkeypatch, log_records):
    def broken():
        raise RuntimeError("database on fire")

    monkeypatch.setattr("notifications.api.views.stats_summary", broken)
    admin.raise_request_exception = False
    response = admin.get("/api/v1/stats/summary", headers={"X-Request-ID": "req-500"})
    body = assert_error(response, 500, "Internal Server Error", "request_id")
    assert body["request_id"] == "req-500"
    assert "database on fire" not in response.content.decode()
    logged = [r for r in log_records if r.name == "django.request" and r.levelno == logging.ERROR]
    assert logged
    assert logged[0].request_id == "req-500"
    assert logged[0].exc_info


def test_errors_outside_the_api_stay_html(client):
    response = client.get("/no-such-page-anywhere")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_validation_errors_list_fields_and_a_readable_message(admin):
    response = admin.post("/api/v1/notifications", {"type": "Nope", "channel": "Email"}, format="json")
    body = assert_error(response, 400, "Bad Request")
    assert body["message"].startswith("invalid input: type: unknown type")
    assert set(body["fields"]) == {"type", "recipient", "message"}


def test_unknown_api_paths_answer_json_even_to_browsers(admin):
    response = admin.get("/api/v1/nothing", headers={"Accept": "text/html"})
    assert_error(response, 404, "Not Found")


def test_nul_characters_in_input_are_400_or_404_never_500(admin):
    assert admin.get("/api/v1/notifications?certificate_id=a%00b").status_code == 400
    assert admin.get("/api/v1/notifications/notif%00x").status_code == 404
    response = admin.post("/api/v1/notifications/requeue", {"ids": ["a\x00b"]}, format="json")
    assert response.status_code == 400


def test_an_absurd_page_number_is_just_empty(admin, make_event):
    make_event()
    body = admin.get(f"/api/v1/notifications?page={10**30}").json()
    assert (body["data"], body["total"]) == ([], 1)


def test_unknown_api_paths_are_json_even_in_debug_mode(admin, settings):
    settings.DEBUG = True
    assert_error(admin.get("/api/v1/notifications/"), 404, "Not Found", "no trailing slash")
    assert_error(admin.post("/api/v1/whatever", {}, format="json"), 404, "Not Found")
