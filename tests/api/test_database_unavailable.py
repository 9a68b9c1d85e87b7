"""While the database does not answer, the API, the UI and the admin say 503 with Retry-After, never 500."""
import pytest
from django.db import InterfaceError, OperationalError, connection
from django.test import Client
from rest_framework.test import APIClient

from tests.api.conftest import ADMIN_KEY, assert_error

BODY = {"type": "ExpirationWarning", "channel": "Webhook", "recipient": "ops@example.com", "message": "expiring"}


@pytest.fixture
def database_refusing_connections(transactional_db, closed_port):
    """The real thing: the next connection goes to a port where nobody listens."""
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port))
    yield
    connection.close()
    connection.settings_dict.update(saved)


@pytest.fixture
def logged_in_browser(django_user_model):
    user = django_user_model.objects.create_superuser("root", password="pw-for-the-test-only")
    browser = Client(raise_request_exception=False)
    browser.force_login(user)
    return browser


def api_client():
    return APIClient(headers={"Authorization": f"Bearer {ADMIN_KEY}"}, raise_request_exception=False)


@pytest.mark.postgres
def test_api_answers_503_with_retry_after_while_postgresql_refuses_connections(
    logged_in_browser, database_refusing_connections
):
    client = api_client()
    for response in (
        client.get("/api/v1/notifications"),
        client.post("/api/v1/notifications", BODY, format="json"),
        client.get("/api/v1/stats/summary"),
        client.post("/api/v1/notifications/notif-x/requeue"),
    ):
        assert_error(response, 503, "Service Unavailable", "the database is not answering")
        assert response["Retry-After"] == "10"

    for path in ("/", "/notifications/", "/admin/"):
        page = logged_in_browser.get(path)
        assert page.status_code == 503
        assert page["Retry-After"] == "10"
        assert "The database is not answering" in page.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "error",
    [OperationalError("server closed the connection unexpectedly"), InterfaceError("connection already closed")],
)
def test_a_connection_lost_mid_request_is_503_not_500(error, monkeypatch):
    def lost(*args, **kwargs):
        raise error

    monkeypatch.setattr(connection, "cursor", lost)

    response = api_client().get("/api/v1/notifications")

    assert_error(response, 503, "Service Unavailable")
    assert response["Retry-After"] == "10"


@pytest.mark.django_db
def test_other_server_errors_stay_500(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("notifications.api.views.stats_summary", broken)

    assert_error(api_client().get("/api/v1/stats/summary"), 500, "Internal Server Error")
