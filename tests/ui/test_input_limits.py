"""The UI's share of issue 21: times outside the accepted years are the API's form error, not a 500 (N9); a body
over Django's size limit is a 413 page (N14); the CSV download says how many rows it holds (N3)."""
import csv
import io

import pytest
from django.conf import settings
from django.test import Client

from notifications.filtersets import TIME_RANGE_ERROR

pytestmark = pytest.mark.django_db

OUT_OF_RANGE = ["0001-01-01", "0001-01-01T00:00", "9999-12-31T23:59-05:00"]
PAGES = [
    "/notifications/", "/notifications/export.csv",
    "/notifications/requeue-matching/", "/notifications/dismiss-matching/",
]


@pytest.fixture
def operator_client(operator):
    """Server errors come back as responses, as a browser would see them."""
    client = Client(raise_request_exception=False)
    client.force_login(operator)
    return client


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize("name", ["created_after", "failed_before"])
@pytest.mark.parametrize("path", PAGES)
def test_a_time_outside_the_accepted_years_is_the_apis_form_error(operator_client, event_in, path, name, value):
    event_in("dead")

    response = operator_client.get(path, {"tab": "dead", name: value})

    assert response.status_code == 400
    assert TIME_RANGE_ERROR in response.content.decode()


@pytest.mark.parametrize("path", ["/notifications/requeue-matching/", "/notifications/dismiss-matching/"])
def test_an_all_matching_action_posted_with_an_out_of_range_time_changes_nothing(operator_client, event_in, path):
    dead = event_in("dead")

    response = operator_client.post(path, {"created_before": "9999-12-31T23:59-05:00"})

    assert response.status_code == 400
    assert TIME_RANGE_ERROR in response.content.decode()
    dead.refresh_from_db()
    assert (dead.status, dead.read_at) == ("dead", None)


def test_a_time_given_with_an_offset_travels_on_in_that_offset(operator_client, event_in):
    dead = event_in("dead")

    confirm = operator_client.get("/notifications/requeue-matching/", {"created_after": "1000-01-01T00:00+01:00"})
    hidden = confirm.context["hidden"]
    done = operator_client.post("/notifications/requeue-matching/", hidden)

    assert hidden["created_after"] == "1000-01-01T00:00:00+01:00"  # in UTC it would be the year 999
    assert done.status_code == 302
    dead.refresh_from_db()
    assert dead.status == "pending"


def test_a_form_over_djangos_size_limit_is_a_413_page(operator_client, event_in):
    event_in("dead")
    response = operator_client.post(
        "/notifications/dismiss-selected/", {"ids": ["x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE]}
    )

    assert response.status_code == 413
    assert "The request is too large" in response.content.decode()


def test_the_csv_download_says_how_many_rows_it_holds(operator_client, event_in):
    for _ in range(3):
        event_in("dead")
    event_in("sent")

    response = operator_client.get("/notifications/export.csv", {"tab": "dead"})

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response["X-Total-Count"] == "3"
    assert len(rows) == 1 + 3
