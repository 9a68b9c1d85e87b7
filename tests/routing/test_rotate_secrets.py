"""`notifications rotate-secrets`: every stored destination re-sealed under the first key, so the old key can go."""
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from notifications.actors import Actor
from notifications.models import ConfigurationAction
from notifications.operations.destinations import create_destination, send_test

pytestmark = pytest.mark.django_db
OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def _column(name):
    with connection.cursor() as cursor:
        cursor.execute("select sealed_secrets from notification_destinations where name = %s", [name])
        return cursor.fetchone()[0]


def _rotate(*arguments):
    out = StringIO()
    call_command("notifications", "rotate-secrets", *arguments, stdout=out)
    return out.getvalue()


def test_after_rotation_the_old_key_can_go_and_delivery_still_works(settings, receiver):
    settings.CERTCTL_SECRETS_KEYS = OLD
    for name in ("alpha", "beta", "gamma"):
        create_destination(
            name=name, channel="Webhook", config={"url": f"{receiver.url}/{name}", "secret": "s3cret-signing"},
            actor=Actor("alice", "api"),
        )
    create_destination(name="plain", channel="Teams", config={"webhook_url": receiver.url + "/t"},
                       actor=Actor("alice", "api"))
    before = {name: _column(name) for name in ("alpha", "beta", "gamma")}
    settings.CERTCTL_SECRETS_KEYS = f"{NEW},{OLD}"

    assert "re-sealed the secrets of 4 destination(s)" in _rotate("--batch-size", "2")

    settings.CERTCTL_SECRETS_KEYS = NEW
    for name in ("alpha", "beta", "gamma"):
        assert _column(name) != before[name]
        assert send_test(name, actor=Actor("bob", "cli")).outcome == "ok"
    assert [request.path for request in receiver.requests] == ["/alpha", "/beta", "/gamma"]
    rotations = ConfigurationAction.objects.filter(action="rotate")
    assert sorted(rotations.values_list("target", flat=True)) == ["alpha", "beta", "gamma", "plain"]
    assert {action.source for action in rotations} == {"cli"}


def test_without_the_old_key_rotation_stops_naming_the_destination(settings, receiver):
    settings.CERTCTL_SECRETS_KEYS = OLD
    create_destination(name="alpha", channel="Webhook", config={"url": receiver.url + "/a"}, actor=Actor("a", "api"))
    settings.CERTCTL_SECRETS_KEYS = NEW
    with pytest.raises(CommandError, match="rotation stopped: destination 'alpha'") as stopped:
        _rotate()
    assert stopped.value.returncode == 1
