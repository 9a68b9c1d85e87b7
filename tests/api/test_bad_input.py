"""Every bad input is a 4xx in the API's error shape, never a 500 or an HTML page."""
import json

import pytest
from rest_framework.test import APIClient

from notifications.models import NotificationEvent
from tests.api.conftest import ADMIN_KEY, assert_error

pytestmark = pytest.mark.django_db

VALID = {
    "type": "ExpirationWarning", "channel": "Webhook", "recipient": "ops@example.com", "message": "expires in 7 days",
}
METHODS = ["get", "post", "put", "patch", "delete", "options"]


def post_raw(client, path, body):
    return client.generic("POST", path, body, content_type="application/json")


@pytest.mark.parametrize("path", ["/api/v1/notifications", "/api/v1/notifications/requeue"])
@pytest.mark.parametrize("depth", [21, 1000, 100_000])
def test_json_nested_too_deep_is_400(path, depth, admin):
    response = post_raw(admin, path, "[" * depth + "]" * depth)

    assert_error(response, 400, "Bad Request")
    assert "nested deeper than 20 levels" in response.json()["message"]


def test_json_nested_within_the_limit_is_judged_on_its_fields(admin):
    nested = {**VALID, "certificate_id": json.loads("[" * 19 + "]" * 19)}

    response = admin.post("/api/v1/notifications", nested, format="json")

    assert_error(response, 400, "Bad Request")
    assert set(response.json()["fields"]) == {"certificate_id"}


@pytest.mark.parametrize("path", ["/api/v1/notifications", "/api/v1/notifications/requeue"])
def test_a_body_over_the_size_limit_is_413(path, admin, settings):
    settings.CERTCTL_API_MAX_BODY_BYTES = 4096

    response = post_raw(admin, path, json.dumps({**VALID, "message": "x" * 5000}))

    assert_error(response, 413, "Request Entity Too Large")
    assert "CERTCTL_API_MAX_BODY_BYTES" in response.json()["message"]
    assert NotificationEvent.objects.count() == 0


def test_a_bulk_requeue_of_the_most_ids_fits_the_default_size_limit(admin):
    ids = [f"notif-{n:058d}" for n in range(10_000)]

    response = admin.post("/api/v1/notifications/requeue", {"ids": ids}, format="json")

    assert response.status_code == 200
    assert response.json() == {"requeued": 0, "skipped": 10_000}


def test_create_names_every_unknown_and_read_only_field(admin):
    response = admin.post(
        "/api/v1/notifications", {**VALID, "status": "sent", "retry_count": 99, "bogus": 1}, format="json"
    )

    assert_error(response, 400, "Bad Request")
    fields = response.json()["fields"]
    assert set(fields) == {"status", "retry_count", "bogus"}
    assert fields["status"].startswith("read-only")
    assert fields["retry_count"].startswith("read-only")
    assert fields["bogus"].startswith("unknown field")
    assert NotificationEvent.objects.count() == 0


def test_create_reports_unknown_fields_together_with_invalid_ones(admin):
    response = admin.post("/api/v1/notifications", {**VALID, "channel": "Fax", "bogus": 1}, format="json")

    assert set(response.json()["fields"]) == {"channel", "bogus"}


@pytest.mark.parametrize("event_id", ["%00", "x%00y", "a" * 65])
@pytest.mark.parametrize(
    ("method", "suffix"), [("get", ""), ("get", "/attempts"), ("post", "/read"), ("post", "/requeue")]
)
def test_impossible_ids_are_404(event_id, method, suffix, admin):
    response = getattr(admin, method)(f"/api/v1/notifications/{event_id}{suffix}")

    assert_error(response, 404, "Not Found")


@pytest.fixture
def csrf_checking_admin():
    """A Bearer client against a server that enforces CSRF, as a real one does."""
    return APIClient(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {ADMIN_KEY}"})


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "path",
    ["/api/v1/nothing", "/api/v1/notifications/x/read/", "/api/v1/notifications/", "/api/v2/notifications", "/api/"],
)
def test_unknown_api_paths_are_json_404_for_every_method_and_never_a_csrf_page(method, path, csrf_checking_admin):
    response = getattr(csrf_checking_admin, method)(path)

    assert_error(response, 404, "Not Found")
    assert "no API endpoint" in response.json()["message"]


def test_unknown_api_paths_are_json_404_also_in_debug_mode(csrf_checking_admin, settings):
    settings.DEBUG = True

    assert_error(csrf_checking_admin.post("/api/v2/nothing"), 404, "Not Found")


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
@pytest.mark.parametrize(
    "path", ["/api/v1/notifications/x/read", "/api/v1/stats/summary", "/api/v1/notifications/requeue"]
)
def test_a_known_path_with_a_wrong_method_is_json_405(method, path, csrf_checking_admin):
    response = getattr(csrf_checking_admin, method)(path)

    assert_error(response, 405, "Method Not Allowed")
    assert response["Allow"]
