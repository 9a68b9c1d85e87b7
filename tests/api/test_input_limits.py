"""Bad input the first probes turned into 500s or the wrong 4xx (issue 21, N8, N9, N14): lone surrogates in JSON,
times outside the years a filter accepts, bodies over Django's own size limit."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from notifications.api.parsers import LONE_SURROGATE_ERROR
from notifications.filtersets import TIME_RANGE_ERROR
from notifications.models import NotificationEvent
from tests.api.conftest import ADMIN_KEY, assert_error

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
VALID = {
    "type": "ExpirationWarning", "channel": "Webhook", "recipient": "ops@example.com", "message": "expires in 7 days",
}
BULK = ["/api/v1/notifications/requeue", "/api/v1/notifications/read"]


@pytest.fixture
def admin():
    """Server errors come back as responses, as a client would see them."""
    return APIClient(headers={"Authorization": f"Bearer {ADMIN_KEY}"}, raise_request_exception=False)


def post_json(client, path, data):
    # json.dumps writes a lone surrogate as the escape "\udc80", as a hostile client would send it.
    return client.generic("POST", path, json.dumps(data), content_type="application/json")


# --- N8: lone surrogates ---------------------------------------------------------


@pytest.mark.parametrize(
    "field", ["type", "channel", "severity", "recipient", "message", "certificate_id", "dedup_key", "id"]
)
def test_a_lone_surrogate_in_any_create_field_is_a_400_naming_it(admin, field):
    response = post_json(admin, "/api/v1/notifications", {**VALID, field: "\udc80x"})

    body = assert_error(response, 400, "Bad Request", field)
    assert body["fields"] == {field: LONE_SURROGATE_ERROR}
    assert NotificationEvent.objects.count() == 0


def test_a_lone_surrogate_in_a_key_is_named_as_an_escape(admin):
    response = post_json(admin, "/api/v1/notifications", {**VALID, "sev\udc80": "warning"})

    assert assert_error(response, 400, "Bad Request")["fields"] == {"sev\\udc80": LONE_SURROGATE_ERROR}


@pytest.mark.parametrize("path", BULK)
@pytest.mark.parametrize(
    ("selection", "field"),
    [
        ({"q": "\udc80"}, "q"),
        ({"error": "timeout \ud800"}, "error"),
        ({"certificate_id": "mc-\udfff"}, "certificate_id"),
        ({"ids": ["notif-1", "notif-\udc80"]}, "ids[1]"),
        ({"status": "dead", "nested": {"deeper": ["ok", "\udc80"]}}, "nested.deeper[1]"),
    ],
)
def test_a_lone_surrogate_in_a_bulk_selection_is_a_400_naming_it(admin, path, selection, field):
    response = post_json(admin, path, selection)

    assert assert_error(response, 400, "Bad Request")["fields"] == {field: LONE_SURROGATE_ERROR}


def test_a_surrogate_pair_is_a_character_like_any_other(admin):
    response = post_json(admin, "/api/v1/notifications", {**VALID, "message": "expires \ud83d\udd12 soon"})

    assert response.status_code == 201
    assert NotificationEvent.objects.get().message == "expires \U0001f512 soon"


# --- N9: times out of range -----------------------------------------------------------


OUT_OF_RANGE = ["0001-01-01", "0999-12-31T23:59:59Z", "9999-12-31T23:59-05:00", "0001-01-01T00:00+01:00"]


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize("name", ["created_after", "failed_before"])
@pytest.mark.parametrize("answer", ["json", "csv"])
def test_a_time_outside_the_accepted_years_is_a_400_naming_the_filter(admin, value, name, answer):
    response = admin.get("/api/v1/notifications", {name: value, "format": answer})

    assert assert_error(response, 400, "Bad Request")["fields"] == {name: TIME_RANGE_ERROR}


@pytest.mark.parametrize("path", BULK)
def test_a_bulk_selection_by_an_out_of_range_time_is_a_400(admin, path):
    response = post_json(admin, path, {"status": "dead", "created_before": "9999-12-31T23:59-05:00"})

    assert assert_error(response, 400, "Bad Request")["fields"] == {"created_before": TIME_RANGE_ERROR}


@pytest.mark.parametrize(
    "value", ["1000-01-01", "1000-01-01T00:00+13:59", "9999-12-28T23:59:59.999999-13:59", "9999-12-31T23:59Z"]
)
def test_the_edges_of_the_accepted_years_are_accepted(admin, make_event, value):
    make_event()

    response = admin.get("/api/v1/notifications", {"created_after": value})

    assert response.status_code == 200, response.content


# --- N14: over Django's own body limit --------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/notifications", *BULK])
def test_a_body_over_djangos_limit_is_the_documented_413(admin, path):
    body = json.dumps({"ids": ["x" * 60] * 50_000})
    assert len(body) > django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = admin.generic("POST", path, body, content_type="application/json")

    assert_error(response, 413, "Request Entity Too Large", "CERTCTL_API_MAX_BODY_BYTES", "send fewer ids")


def _setting(name, **env):
    base = {"PATH": os.environ["PATH"], "SECRET_KEY": "x" * 50, "DATABASE_URL": "sqlite:///:memory:"}
    result = subprocess.run(
        [sys.executable, "-c", f"import certctl.settings as s; print(s.{name})"],
        cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60, check=True,
    )
    return int(result.stdout)


def test_a_larger_api_limit_raises_djangos_with_it(db):
    assert _setting("DATA_UPLOAD_MAX_MEMORY_SIZE") == 2_621_440
    assert _setting("DATA_UPLOAD_MAX_MEMORY_SIZE", CERTCTL_API_MAX_BODY_BYTES="4194304") == 4_194_304
