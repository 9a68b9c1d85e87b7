"""Failed logins on /login/ and /admin/login/ are throttled per client address, in the bucket and under the rule
of failed API keys (issue 21, N11): after the burst a login gets 429 with Retry-After, unchecked."""
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from tests.ui.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGINS = ["/login/", "/admin/login/"]
BURST = 3


@pytest.fixture(autouse=True)
def rule(settings):
    settings.CERTCTL_AUTH_FAILURE_BURST = BURST
    settings.CERTCTL_AUTH_FAILURES_PER_MINUTE = 1
    settings.CERTCTL_AUTH_TYPE = "api-key"
    settings.CERTCTL_API_KEYS_NAMED = "oncall:the-real-key-0123456789:admin"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed, not security
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def password_checks(monkeypatch):
    """Every password check made, as (username,)."""
    checks = []
    check = ModelBackend.authenticate

    def counted(self, request, username=None, password=None, **kwargs):
        checks.append(username)
        return check(self, request, username=username, password=password, **kwargs)

    monkeypatch.setattr(ModelBackend, "authenticate", counted)
    return checks


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("root", password=PASSWORD)


def log_in(client, path, username, password, **extra):
    return client.post(path, {"username": username, "password": password, "next": "/"}, **extra)


@pytest.mark.parametrize("path", LOGINS)
def test_after_the_burst_a_login_is_429_and_no_password_is_checked(path, admin_user, password_checks):
    client = Client()
    for _ in range(BURST):
        assert log_in(client, path, "root", "wrong").status_code == 200  # the form again, with its error
    checks_before = len(password_checks)

    response = log_in(client, path, "root", PASSWORD)  # even the right password waits

    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    page = response.content.decode()
    assert "Too many failed logins" in page
    assert "127.0.0.1" in page
    assert "60 seconds" in page
    assert len(password_checks) == checks_before == BURST
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("path", LOGINS)
def test_a_successful_login_counts_nothing(path, admin_user):
    client = Client()
    for _ in range(BURST - 1):
        log_in(client, path, "root", "wrong")

    assert log_in(client, path, "root", PASSWORD).status_code == 302
    client.logout()
    assert log_in(client, path, "root", "wrong").status_code == 200  # the last failure left
    assert log_in(client, path, "root", "wrong").status_code == 429


def test_the_ui_and_the_admin_share_the_addresss_failures_with_api_keys(admin_user):
    client = Client()
    assert client.get("/api/v1/stats/summary", headers={"Authorization": "Bearer wrong"}).status_code == 401
    log_in(client, "/login/", "root", "wrong")
    log_in(client, "/admin/login/", "root", "wrong")

    assert log_in(client, "/login/", "root", PASSWORD).status_code == 429
    assert client.get("/api/v1/stats/summary", headers={"Authorization": "Bearer wrong"}).status_code == 429


def test_another_address_and_the_login_page_itself_are_not_held_up(admin_user):
    client = Client()
    for _ in range(BURST):
        log_in(client, "/login/", "root", "wrong")

    assert client.get("/login/").status_code == 200
    assert log_in(Client(), "/login/", "root", PASSWORD, REMOTE_ADDR="192.0.2.7").status_code == 302


def test_the_address_may_try_again_once_a_failure_has_refilled(admin_user):
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(BURST):
            log_in(client, "/login/", "root", "wrong")
        assert log_in(client, "/login/", "root", PASSWORD).status_code == 429
        clock.shift(timedelta(seconds=61))

        assert log_in(client, "/login/", "root", PASSWORD).status_code == 302


def test_no_limit_when_failures_per_minute_is_0(admin_user, settings):
    settings.CERTCTL_AUTH_FAILURES_PER_MINUTE = 0
    client = Client()
    for _ in range(BURST * 3):
        assert log_in(client, "/login/", "root", "wrong").status_code == 200
    assert log_in(client, "/login/", "root", PASSWORD).status_code == 302
