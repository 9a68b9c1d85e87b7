"""The Destinations page: the list with each destination's state, adding and editing with write-only secrets, Send
test against a real local receiver, pause and resume, removal with its refusal; viewers look but do not change."""
import pytest
from django.utils import timezone

from notifications.actors import Actor
from notifications.models import ConfigurationAction, Destination
from notifications.operations.destinations import create_destination
from notifications.queries.destinations import get_destination
from notifications.sealing import unseal
from tests.deliveries import destination_state, state_of
from tests.receivers import Reply

pytestmark = pytest.mark.django_db

SECRET = "whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LWZvci10ZXN0cw=="
SETUP = Actor("setup", "api")


def stored(name="payments", url="http://127.0.0.1:9/payments", **config):
    return create_destination(name=name, channel="Webhook", config={"url": url, **config}, actor=SETUP)


def audit(action, target):
    return ConfigurationAction.objects.filter(action=action, target=target).values_list("actor", "source").first()


def test_the_page_lists_every_destination_with_its_state_and_problem(operator_client, settings):
    settings.CERTCTL_WEBHOOK_URL = "http://127.0.0.1:9/env"
    stored(secret=SECRET)
    destination_state(
        "Slack", consecutive_failures=6, failing_events=["a"], opened_at=timezone.now(),
        next_probe_at=timezone.now() + timezone.timedelta(seconds=40),
    )

    body = operator_client.get("/destinations/").content.decode()

    assert 'data-destination="payments"' in body
    assert body.count("environment · read-only") == 6
    assert "breaker open" in body
    assert "next probe" in body
    assert "secrets set: url, secret" in body
    assert "required for the" in body or "not configured" in body  # Email, Slack… from the environment
    assert SECRET not in body
    assert "127.0.0.1:9/payments" not in body
    # Stored ones can be edited and removed; environment ones cannot.
    assert "/destinations/payments/edit/" in body
    assert "/destinations/payments/remove/" in body
    assert "/destinations/Webhook/edit/" not in body
    assert "/destinations/Webhook/remove/" not in body


def test_adding_a_webhook_keeps_the_secret_sealed_and_audits_the_user(operator_client):
    assert b"Channel" in operator_client.get("/destinations/new/").content
    form = operator_client.get("/destinations/new/?channel=Webhook").content.decode()
    assert 'type="password"' in form
    assert 'name="secret"' in form
    assert 'name="url"' in form

    response = operator_client.post("/destinations/new/", {
        "channel": "Webhook", "name": "payments", "url": "http://127.0.0.1:9/hook", "secret": SECRET,
        "enabled": "on", "description": "Payments team",
    }, follow=True)

    assert "Added destination payments (Webhook)." in response.content.decode()
    row = get_destination("payments")
    assert sorted(row["secrets_set"]) == ["secret", "url"]
    assert row["description"] == "Payments team"
    assert row["enabled"]
    assert SECRET not in response.content.decode()
    assert unseal(Destination.objects.get(name="payments").sealed_secrets)["secret"] == SECRET
    assert audit("create", "payments") == ("operator", "ui")


def test_refusals_come_back_on_their_fields(operator_client):
    stored()

    bad_name = operator_client.post("/destinations/new/", {
        "channel": "Webhook", "name": "bad name!", "url": "http://127.0.0.1:9/x",
    })
    assert bad_name.status_code == 400
    assert 'id="id_name_error"' in bad_name.content.decode()

    bad_config = operator_client.post("/destinations/new/", {
        "channel": "Webhook", "name": "fresh", "url": "ftp://nowhere", "secret": "not-base64!",
    })
    assert bad_config.status_code == 400
    body = bad_config.content.decode()
    assert 'id="id_url_error"' in body
    assert "http(s) URL" in body
    assert "not-base64!" not in body  # a secret typed is never sent back, even with the form

    taken = operator_client.post("/destinations/new/", {
        "channel": "Webhook", "name": "payments", "url": "http://127.0.0.1:9/x",
    })
    assert "already exists" in taken.content.decode()
    assert not Destination.objects.filter(name__in=["bad name!", "fresh"]).exists()


def test_editing_keeps_a_secret_left_blank_and_clears_one_on_request(operator_client):
    stored(secret=SECRET)
    form = operator_client.get("/destinations/payments/edit/").content.decode()
    assert "set — leave blank to keep it" in form
    assert SECRET not in form
    assert 'name="secret__clear"' in form

    operator_client.post("/destinations/payments/edit/", {
        "url": "", "secret": "", "description": "now described", "enabled": "on",
    })
    row = get_destination("payments")
    assert row["description"] == "now described"
    assert sorted(row["secrets_set"]) == ["secret", "url"]  # a blank url and secret kept their values
    assert audit("update", "payments") == ("operator", "ui")

    operator_client.post("/destinations/payments/edit/", {"secret__clear": "on", "enabled": "on"})
    assert get_destination("payments")["secrets_set"] == ["url"]


def test_an_environment_destination_is_read_only(operator_client):
    response = operator_client.get("/destinations/Webhook/edit/", follow=True)
    assert "is defined by environment variables" in response.content.decode()
    operator_client.post("/destinations/Webhook/remove/")
    assert Destination.objects.live().filter(name="Webhook").exists()
    assert operator_client.get("/destinations/nowhere/edit/").status_code == 404


def test_send_test_shows_outcome_status_and_redacted_error(operator_client, receiver):
    stored(url=receiver.url + "/hook/tok-abcdef1234567890")
    receiver.reply_with(Reply(status=500, body="boom"))

    response = operator_client.post("/destinations/payments/test/", follow=True)

    body = response.content.decode()
    assert "Test of payments: transient, HTTP 500" in body
    assert "tok-abcdef1234567890" not in body
    assert len(receiver.requests) == 1
    assert audit("test", "payments") == ("operator", "ui")

    receiver.reply_with(Reply(status=200))
    ok = operator_client.post("/destinations/payments/test/", follow=True).content.decode()
    assert "Test of payments: ok, HTTP 200" in ok


def test_pause_and_resume_come_back_to_the_destinations_page(operator_client):
    response = operator_client.post("/destinations/Webhook/pause/", {"next": "/destinations/"})
    assert response.url == "/destinations/"
    assert state_of("Webhook").state == "paused"
    assert "by operator" in operator_client.get("/destinations/").content.decode()
    operator_client.post("/destinations/Webhook/resume/", {"next": "/destinations/"})
    assert state_of("Webhook").state == "closed"
    assert audit("pause", "Webhook") == ("operator", "ui")


def test_removing_asks_first_and_is_refused_while_notifications_are_unsent(operator_client, make_event):
    stored()
    make_event(destination="payments", channel=None)
    confirm = operator_client.get("/destinations/payments/remove/").content.decode()
    assert "Remove payments?" in confirm

    refused = operator_client.post("/destinations/payments/remove/", follow=True).content.decode()
    assert "Not removed:" in refused
    assert "unsent" in refused
    assert Destination.objects.live().filter(name="payments").exists()

    stored(name="spare")
    operator_client.post("/destinations/spare/remove/")
    assert not Destination.objects.live().filter(name="spare").exists()
    assert audit("delete", "spare") == ("operator", "ui")


def test_a_viewer_sees_the_page_without_buttons_and_gets_403_on_every_change(viewer_client):
    stored()
    body = viewer_client.get("/destinations/").content.decode()
    assert 'data-destination="payments"' in body
    assert "Send test" not in body
    assert "Add a destination" not in body
    for path in (
        "/destinations/new/", "/destinations/payments/edit/", "/destinations/payments/remove/",
        "/destinations/payments/test/", "/destinations/payments/pause/",
    ):
        assert viewer_client.post(path, {"channel": "Webhook", "name": "x"}).status_code == 403, path
    assert viewer_client.get("/destinations/new/").status_code == 403
    assert ConfigurationAction.objects.filter(source="ui").count() == 0


def test_changes_need_a_csrf_token(client, operator):
    stored()
    client.handler.enforce_csrf_checks = True
    client.force_login(operator)
    assert client.post("/destinations/payments/test/").status_code == 403
    assert client.post("/destinations/new/", {"channel": "Webhook", "name": "x"}).status_code == 403
    assert ConfigurationAction.objects.filter(source="ui").count() == 0


def test_the_list_and_detail_show_destination_and_labels_and_filter_by_them(operator_client, make_event):
    stored()
    payments = make_event(destination="payments", channel=None, labels={"team": "payments", "env": "prod"})
    other = make_event(labels={"team": "edge"})

    listed = operator_client.get("/notifications/", {"destination": "payments", "label": "team=payments"})
    body = listed.content.decode()
    assert f'data-event-id="{payments.id}"' in body
    assert f'data-event-id="{other.id}"' not in body
    assert '<td data-label="Destination">payments</td>' in body
    assert '<span class="label-chip">team=payments</span>' in body
    assert 'placeholder="team=payments"' in body
    assert 'name="destination" value="payments"' in body

    detail = operator_client.get(f"/notifications/{payments.id}/").content.decode()
    assert "<dt>Destination</dt><dd>payments" in detail
    assert '<span class="label-chip">env=prod</span>' in detail
    assert "the channel's environment destination" in operator_client.get(
        f"/notifications/{other.id}/"
    ).content.decode()
