"""A stored destination's secrets are write-only and never shown: not in an API answer, a log line, the error text of
a delivery whose receiver echoes them (percent-encoded, upper-cased, split across lines), nor the CSV export; and the
database holds them sealed."""
import csv
import io
import itertools
import logging
import string
from urllib.parse import quote

import pytest
from django.db import connection
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from certctl.logging import SecretRedactionFilter
from notifications.actors import Actor
from notifications.models import Destination
from notifications.operations.destinations import create_destination
from notifications.operations.events import create_event
from notifications.queries.events import get_event
from tests.api.conftest import ADMIN_KEY
from tests.deliveries import deliver_now
from tests.receivers import Reply

pytestmark = pytest.mark.django_db

SECRET_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "-.~", min_size=12, max_size=40)
ECHOES = {
    "as is": lambda s: s,
    "percent-encoded": lambda s: quote(s, safe=""),
    "upper-cased": str.upper,
    "split by a newline": lambda s: s[: len(s) // 2] + "\n" + s[len(s) // 2:],
}
PROPERTY = hypothesis_settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_names = (f"dest-{n}" for n in itertools.count())


def shows(text, secret):
    """Whether `text` shows `secret` in any of the forms a receiver echoes it in."""
    folded = text.casefold().replace("\n", "")
    return secret.casefold() in folded or quote(secret, safe="").casefold() in folded


def _create_webhook(api, receiver, secret):
    name = next(_names)
    body = {"name": name, "channel": "Webhook", "config": {"url": receiver.url + "/hook", "secret": secret}}
    response = api.post("/api/v1/destinations", body, format="json")
    assert response.status_code == 201, response.content
    return name, response


@pytest.fixture
def api(api_keys):
    from rest_framework.test import APIClient

    return APIClient(headers={"Authorization": f"Bearer {ADMIN_KEY}"})


@pytest.fixture
def api_keys(settings):
    settings.CERTCTL_API_KEYS_NAMED = f"oncall:{ADMIN_KEY}:admin"
    return settings


@PROPERTY
@given(secret=SECRET_TEXT, echo=st.sampled_from(list(ECHOES)))
def test_no_api_answer_shows_the_secret(api, receiver, secret, echo):
    name, created = _create_webhook(api, receiver, secret)
    receiver.reply_with(Reply(status=400, body=f"bad signature, secret was {ECHOES[echo](secret)}"))
    answers = [
        created,
        api.get("/api/v1/destinations"),
        api.get(f"/api/v1/destinations/{name}"),
        api.patch(f"/api/v1/destinations/{name}", {"description": "x"}, format="json"),
        api.post(f"/api/v1/destinations/{name}/test"),
    ]
    for answer in answers:
        assert answer.status_code < 300, answer.content
        assert not shows(answer.content.decode(), secret), answer.content
    assert api.get(f"/api/v1/destinations/{name}").json()["secrets_set"] == ["url", "secret"]


@PROPERTY
@given(secret=SECRET_TEXT, echo=st.sampled_from(list(ECHOES)))
def test_no_log_line_shows_the_secret(receiver, secret, echo):
    create_destination(
        name=next(_names), channel="Webhook", config={"url": receiver.url + "/hook", "secret": secret},
        actor=Actor("alice", "cli"),
    )
    record = logging.makeLogRecord(
        {"msg": "receiver said %s", "args": (ECHOES[echo](secret),), "detail": f"reply: {ECHOES[echo](secret)}"}
    )
    SecretRedactionFilter().filter(record)
    assert not shows(record.getMessage(), secret)
    assert not shows(record.detail, secret)


@PROPERTY
@given(secret=SECRET_TEXT, echo=st.sampled_from(list(ECHOES)))
def test_a_failed_delivery_echoing_a_stored_secret_keeps_it_out_of_its_error_and_the_csv_export(
    api, settings, receiver, secret, echo,
):
    """The environment Webhook's receiver echoes another destination's secret: it is hidden all the same."""
    _create_webhook(api, receiver, secret)
    settings.CERTCTL_WEBHOOK_URL = receiver.url + "/env"
    receiver.reply_with(Reply(status=503, body=f"upstream echoed {ECHOES[echo](secret)}"))
    event, _ = create_event(type="ExpirationWarning", channel="Webhook", recipient="ops", message="m")
    assert deliver_now(event.id) == "failed"
    assert "503" in get_event(event.id).last_error
    assert not shows(get_event(event.id).last_error, secret)
    export = b"".join(api.get("/api/v1/notifications", {"format": "csv"}).streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(export)))
    assert event.id in {row["id"] for row in rows}
    assert not shows(export, secret)


@pytest.mark.parametrize(
    ("channel", "config", "secret"),
    [
        ("Webhook", {"url": "https://hooks.example.com/T0/a1b2c3d4e5", "secret": "sig-0f9e8d7c6b"}, "sig-0f9e8d7c6b"),
        ("Slack", {"webhook_url": "https://hooks.slack.com/services/T0/B0/XyZ123abc456"}, "XyZ123abc456"),
        ("PagerDuty", {"routing_key": "R0utingKey0123456789abcdef012345"}, "R0utingKey0123456789abcdef012345"),
        ("OpsGenie", {"api_key": "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"}, "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"),
        ("Email", {"host": "smtp.example.com", "from_address": "a@example.com", "password": "pw-77aa88bb"},
         "pw-77aa88bb"),
    ],
)
def test_the_database_holds_no_secret_in_plaintext(channel, config, secret):
    create_destination(name="stored", channel=channel, config=config, actor=Actor("alice", "api"))
    with connection.cursor() as cursor:
        cursor.execute(
            "select cast(config as text), sealed_secrets from notification_destinations where name = 'stored'"
        )
        columns = " ".join(cursor.fetchone())
    assert secret not in columns
    assert Destination.objects.get(name="stored").sealed_secrets


def _logged(text):
    record = logging.makeLogRecord({"msg": text})
    SecretRedactionFilter().filter(record)
    return record.getMessage()


def test_a_secret_stored_by_another_process_is_hidden_from_the_next_pass_on(receiver):
    from notifications.engine import passes
    from notifications.models import ConfigVersion
    from notifications.sealing import seal

    create_destination(name="first", channel="Teams", config={"webhook_url": receiver.url + "/t"},
                       actor=Actor("alice", "api"))
    # Another worker stores a destination: this process has not read it yet.
    Destination.objects.create(
        name="second", channel="PagerDuty", sealed_secrets=seal({"routing_key": "R0utingKeyOfAnotherWorker42"})
    )
    ConfigVersion.objects.bump()
    assert "R0utingKeyOfAnotherWorker42" in _logged("echo R0utingKeyOfAnotherWorker42")

    passes.process_pending()

    assert _logged("echo R0utingKeyOfAnotherWorker42") == "echo [redacted]"
