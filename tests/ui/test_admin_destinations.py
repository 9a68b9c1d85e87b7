"""The Django admin for destinations: list, add and change through the operations (audited, source "admin"),
secrets as write-only password inputs, environment destinations read-only."""
import pytest
from django.contrib.messages import get_messages

from notifications.actors import Actor
from notifications.models import ConfigurationAction, Destination
from notifications.operations.destinations import create_destination
from notifications.operations.events import create_event
from notifications.queries.destinations import get_destination

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/notifications/destination/"
SECRET = "adm-secret-5e6f7a8b9c"


def _stored(receiver):
    return create_destination(
        name="payments", channel="Webhook", config={"url": receiver.url + "/hook", "secret": SECRET},
        actor=Actor("alice", "api"),
    )


def test_the_list_shows_every_destination_with_its_state(admin_client, receiver):
    _stored(receiver)
    body = admin_client.get(CHANGELIST).content.decode()
    for name in ("payments", "Webhook", "Slack", "OpsGenie"):
        assert f">{name}<" in body
    assert "Configured" in body
    assert SECRET not in body


def test_adding_goes_through_the_operation_and_is_audited(admin_client, receiver):
    response = admin_client.post(f"{CHANGELIST}add/", {
        "name": "edge", "channel": "Webhook", "enabled": "on", "description": "edge on-call",
        "Webhook__url": receiver.url + "/edge", "Webhook__secret": SECRET, "Slack__webhook_url": "ignored",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    row = get_destination("edge")
    assert (row["channel"], row["secrets_set"], row["description"]) == ("Webhook", ["url", "secret"], "edge on-call")
    action = ConfigurationAction.objects.get(target="edge")
    assert (action.action, action.actor, action.source) == ("create", "admin", "admin")


def test_a_refused_config_is_shown_on_its_field(admin_client):
    response = admin_client.post(f"{CHANGELIST}add/", {"name": "edge", "channel": "Webhook", "Webhook__url": "nope"})
    assert response.status_code == 200
    assert "http(s) URL" in response.content.decode()
    assert not Destination.objects.filter(name="edge").exists()


def test_secrets_are_write_only_and_blank_keeps_them(admin_client, receiver):
    _stored(receiver)
    page = admin_client.get(f"{CHANGELIST}payments/change/").content.decode()
    assert 'type="password"' in page
    assert SECRET not in page
    assert receiver.url not in page  # the Webhook URL is secret too
    response = admin_client.post(f"{CHANGELIST}payments/change/", {
        "description": "payments team", "Webhook__url": "", "Webhook__secret": "",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    row = get_destination("payments")
    assert (row["secrets_set"], row["enabled"], row["description"]) == (["url", "secret"], False, "payments team")
    action = ConfigurationAction.objects.filter(action="update").get()
    assert (action.source, sorted(action.detail["fields"])) == ("admin", ["description", "enabled"])


def test_environment_destinations_are_read_only(admin_client):
    page = admin_client.get(f"{CHANGELIST}Webhook/change/")
    assert page.status_code == 200
    assert "CERTCTL_ variables" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert admin_client.post(f"{CHANGELIST}Webhook/change/", {"enabled": ""}).status_code == 403
    assert admin_client.post(f"{CHANGELIST}Webhook/delete/", {"post": "yes"}).status_code == 403
    assert Destination.objects.get(name="Webhook").enabled


def test_removing_goes_through_the_operation_and_is_refused_while_events_are_unsent(admin_client, receiver):
    _stored(receiver)
    create_event(type="ExpirationWarning", recipient="ops", message="m", destination="payments")
    response = admin_client.post(f"{CHANGELIST}payments/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert "unsent" in " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert get_destination("payments")


def test_removing_one_whose_events_were_sent_keeps_its_history(admin_client, receiver):
    _stored(receiver)
    event, _ = create_event(type="ExpirationWarning", recipient="ops", message="m", destination="payments")
    type(event).objects.filter(id=event.id).update(status="sent", sent_at=event.created_at)
    assert admin_client.post(f"{CHANGELIST}payments/delete/", {"post": "yes"}).status_code == 302
    assert Destination.objects.get(name="payments").deleted_at is not None
    assert ConfigurationAction.objects.filter(action="delete").get().source == "admin"
