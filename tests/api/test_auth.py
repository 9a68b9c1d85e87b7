"""Who may do what: named keys, database tokens, sessions with CSRF, and CERTCTL_AUTH_TYPE=none."""
import logging

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.utils.crypto import get_random_string
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from notifications.api.auth import check_configuration
from notifications.keys import parse_named_keys
from notifications.models import NotificationEvent, OperatorAction
from tests.api.conftest import ADMIN_KEY, assert_error

pytestmark = pytest.mark.django_db

NEW_EVENT = {"type": "RenewalFailure", "channel": "Email", "recipient": "pki@example.com", "message": "renewal failed"}

# Who may: READS (any key or login), ACKNOWLEDGES (any key or login, as certctl's read-only role may mark read;
# a browser session needs its CSRF token), CHANGES (an admin key or the Django change permission).
READS, ACKNOWLEDGES, CHANGES = "reads", "acknowledges", "changes"

# name, method, path (with {id} of a dead event), JSON body, status on success, who may
ENDPOINTS = [
    ("list", "get", "/api/v1/notifications", None, 200, READS),
    ("create", "post", "/api/v1/notifications", NEW_EVENT, 201, CHANGES),
    ("get", "get", "/api/v1/notifications/{id}", None, 200, READS),
    ("attempts", "get", "/api/v1/notifications/{id}/attempts", None, 200, READS),
    ("read", "post", "/api/v1/notifications/{id}/read", None, 200, ACKNOWLEDGES),
    ("bulk_read", "post", "/api/v1/notifications/read", {"ids": ["{id}"]}, 200, ACKNOWLEDGES),
    ("requeue", "post", "/api/v1/notifications/{id}/requeue", None, 200, CHANGES),
    ("bulk_requeue", "post", "/api/v1/notifications/requeue", {"ids": ["{id}"]}, 200, CHANGES),
    ("stats", "get", "/api/v1/stats/summary", None, 200, READS),
]
CALLERS = ["no_key", "wrong_key", "read_only_key", "admin_key", "session_without_csrf", "session_with_csrf"]


def client_for(caller, user):
    if caller == "no_key":
        return APIClient()
    if caller == "wrong_key":
        return APIClient(headers={"Authorization": "Bearer not-a-key"})
    if caller == "read_only_key":
        from tests.api.conftest import READ_KEY

        return APIClient(headers={"Authorization": f"Bearer {READ_KEY}"})
    if caller == "admin_key":
        return APIClient(headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username=user.username, password="s3cret-pass-for-tests")
    if caller == "session_with_csrf":
        token = get_random_string(32)
        client.cookies["csrftoken"] = token
        client.credentials(HTTP_X_CSRFTOKEN=token)
    return client


def expected(caller, success, who_may):
    if caller in ("no_key", "wrong_key"):
        return 401
    if who_may == READS or caller in ("admin_key", "session_with_csrf"):
        return success
    if who_may == ACKNOWLEDGES and caller == "read_only_key":
        return success
    return 403


def call(client, method, path, body, event_id):
    path = path.format(id=event_id)
    if body is not None:
        body = {k: [v.format(id=event_id) for v in vs] if isinstance(vs, list) else vs for k, vs in body.items()}
    return getattr(client, method)(path, body, format="json") if body is not None else getattr(client, method)(path)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(
    ("name", "method", "path", "body", "success", "who_may"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS]
)
def test_auth_matrix(caller, name, method, path, body, success, who_may, dead_event, operator_user):
    client = client_for(caller, operator_user)
    before = (NotificationEvent.objects.count(), OperatorAction.objects.count())
    response = call(client, method, path, body, dead_event.id)
    status = expected(caller, success, who_may)
    assert response.status_code == status, response.content
    assert response["X-Request-ID"]
    if status == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="certctl"'
        assert_error(response, 401, "Unauthorized", "key")
    if status == 403:
        body = assert_error(response, 403, "Forbidden")
        assert ("CSRF" in body["message"]) == caller.startswith("session")
        if not caller.startswith("session"):
            assert "admin key" in body["message"]
    if status >= 400:
        assert (NotificationEvent.objects.count(), OperatorAction.objects.count()) == before
    elif who_may == ACKNOWLEDGES:
        assert NotificationEvent.objects.get(id=dead_event.id).read_at is not None


def test_session_user_without_the_change_permission_may_mark_read_but_not_requeue(dead_event):
    User.objects.create_user("viewer", password="s3cret-pass-for-tests")
    client = APIClient()
    client.login(username="viewer", password="s3cret-pass-for-tests")
    assert client.post(f"/api/v1/notifications/{dead_event.id}/read").status_code == 200
    marked = client.post("/api/v1/notifications/read", {"status": "dead"}, format="json")
    assert marked.json() == {"marked_read": 0, "skipped": 0}
    assert_error(
        client.post("/api/v1/notifications/requeue", {"status": "read"}, format="json"), 403, "Forbidden", "admin key"
    )
    assert OperatorAction.objects.get().actor == "viewer"


def test_actor_is_the_session_username(dead_event, operator_user):
    client = client_for("session_with_csrf", operator_user)
    assert client.post(f"/api/v1/notifications/{dead_event.id}/requeue").status_code == 200
    assert OperatorAction.objects.get().actor == "alice"


def test_session_user_without_the_change_permission_may_only_read(dead_event):
    User.objects.create_user("viewer", password="s3cret-pass-for-tests")
    client = APIClient()
    client.login(username="viewer", password="s3cret-pass-for-tests")
    assert client.get("/api/v1/notifications").status_code == 200
    assert_error(
        client.post(f"/api/v1/notifications/{dead_event.id}/requeue"), 403, "Forbidden", "change_notificationevent"
    )


@pytest.mark.parametrize("with_permission", [True, False])
def test_database_tokens_use_the_bearer_keyword(dead_event, operator_user, with_permission):
    user = operator_user if with_permission else User.objects.create_user("bot")
    token = Token.objects.create(user=user)
    client = APIClient(headers={"Authorization": f"Bearer {token.key}"})
    assert client.get(f"/api/v1/notifications/{dead_event.id}").status_code == 200
    response = client.post(f"/api/v1/notifications/{dead_event.id}/requeue")
    assert response.status_code == (200 if with_permission else 403)
    if with_permission:
        assert OperatorAction.objects.get().actor == user.username


def test_token_of_a_deactivated_user_is_refused(operator_user):
    token = Token.objects.create(user=operator_user)
    operator_user.is_active = False
    operator_user.save()
    response = APIClient(headers={"Authorization": f"Bearer {token.key}"}).get("/api/v1/notifications")
    assert_error(response, 401, "Unauthorized", "invalid API key")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Bearer", "malformed Authorization header"),
        ("Bearer two words", "malformed Authorization header"),
        ("Basic dXNlcjpwYXNz", "no API key"),
        (f"Bearer {ADMIN_KEY}x", "invalid API key"),
        (f"Bearer {ADMIN_KEY[:-1]}", "invalid API key"),
    ],
)
def test_bad_authorization_headers_are_401(header, message):
    response = APIClient(headers={"Authorization": header}).get("/api/v1/notifications")
    assert_error(response, 401, "Unauthorized", message)
    assert response["WWW-Authenticate"] == 'Bearer realm="certctl"'


def test_the_keyword_is_case_insensitive():
    assert APIClient(headers={"Authorization": f"bearer {ADMIN_KEY}"}).get("/api/v1/notifications").status_code == 200


def test_auth_type_none_lets_everyone_in_as_anonymous(settings, dead_event, caplog):
    settings.CERTCTL_AUTH_TYPE = "none"
    client = APIClient()
    assert client.get("/api/v1/notifications").status_code == 200
    assert client.post(f"/api/v1/notifications/{dead_event.id}/requeue").status_code == 200
    assert OperatorAction.objects.get().actor == "anonymous"
    with caplog.at_level(logging.WARNING, logger="certctl.api"):
        check_configuration()
    assert "CERTCTL_AUTH_TYPE=none" in caplog.text


def test_auth_type_api_key_does_not_warn(caplog):
    with caplog.at_level(logging.WARNING, logger="certctl.api"):
        check_configuration()
    assert "CERTCTL_AUTH_TYPE=none" not in caplog.text


def test_named_keys_format():
    keys = parse_named_keys(" ci:k1 , ops:k2:admin,,legacy:k3:ADMIN")
    assert [(k.name, k.key, k.admin) for k in keys] == [
        ("ci", "k1", False), ("ops", "k2", True), ("legacy", "k3", True),
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("ci", "entry 1 (ci) is not valid: expected name:key"),
        ("ci:k1,:k2", "entry 2 (no name)"),
        ("ci:secret-value:root", "the third part may only be 'admin'"),
        ("ci:k1,ci:k2", "repeats the name 'ci'"),
        ("ci:k1:admin:extra", "entry 1 (ci) is not valid"),
    ],
)
def test_malformed_named_keys_stop_start_up_without_showing_the_key(raw, message):
    with pytest.raises(ImproperlyConfigured) as error:
        parse_named_keys(raw)
    assert message in str(error.value)
    assert "k1" not in str(error.value)
    assert "secret-value" not in str(error.value)


def test_start_up_check_refuses_malformed_keys(settings):
    settings.CERTCTL_API_KEYS_NAMED = "ci:k1,broken"
    with pytest.raises(ImproperlyConfigured, match="entry 2 \\(broken\\)"):
        check_configuration()
