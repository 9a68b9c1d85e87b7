import os
import socket

import pytest

from notifications import services
from tests.receivers import Receiver

IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_runtest_setup(item):
    """PostgreSQL-only tests skip elsewhere with a reason; in CI such a skip would hide a failure, so it fails."""
    if "postgres" not in item.keywords:
        return
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    if IN_CI:
        pytest.fail("CI=true but DATABASE_URL is not PostgreSQL: this test must run on PostgreSQL in CI")
    pytest.skip("needs PostgreSQL (row locks, SKIP LOCKED): set DATABASE_URL=postgres://… to run it")


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def closed_port():
    """A local port nobody listens on, for connection-refused cases."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def _no_channels_configured(settings):
    """Each test configures the channels it uses; nothing leaks in from the developer's environment."""
    for name in (
        "CERTCTL_SMTP_HOST", "CERTCTL_SMTP_FROM_ADDRESS", "CERTCTL_SMTP_USERNAME", "CERTCTL_SMTP_PASSWORD",
        "CERTCTL_WEBHOOK_URL", "CERTCTL_WEBHOOK_SECRET", "CERTCTL_SLACK_WEBHOOK_URL", "CERTCTL_TEAMS_WEBHOOK_URL",
        "CERTCTL_PAGERDUTY_ROUTING_KEY", "CERTCTL_OPSGENIE_API_KEY", "CERTCTL_API_KEYS_NAMED", "CERTCTL_METRICS_TOKEN",
    ):
        setattr(settings, name, "")


@pytest.fixture
def webhook(settings, receiver):
    """The Webhook channel pointed at a local receiver."""
    settings.CERTCTL_WEBHOOK_URL = receiver.url + "/hook"
    return receiver


@pytest.fixture
def make_event(db):
    def make(**overrides):
        fields = dict(type="ExpirationWarning", channel="Webhook", recipient="ops@example.com", message="api.example.com expires in 7 days")
        fields.update(overrides)
        event, _ = services.create_event(**fields)
        return event

    return make
