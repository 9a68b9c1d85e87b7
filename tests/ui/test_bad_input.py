"""Impossible ids are 404 in the UI; the admin edits only what it may, with the API's rules."""
import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from notifications.admin import NotificationEventForm
from notifications.models import NotificationEvent

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/notifications/notificationevent/"


@pytest.mark.parametrize("event_id", ["%00", "x%00y", "a" * 65])
@pytest.mark.parametrize(("method", "suffix"), [("get", ""), ("post", "requeue/"), ("post", "read/")])
def test_impossible_ids_are_404_in_the_ui(event_id, method, suffix, operator_client):
    response = getattr(operator_client, method)(f"/notifications/{event_id}/{suffix}")

    assert response.status_code == 404


def test_requeue_selected_skips_impossible_ids(operator_client, event_in):
    dead = event_in("dead")

    response = operator_client.post("/notifications/requeue-selected/", {"ids": [dead.id, "x\x00y", "b" * 65]})

    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["1 requeued, 2 skipped (not failed or dead)."]


def change_form(event, **changes):
    data = {
        "type": event.type, "channel": event.channel, "recipient": event.recipient, "message": event.message,
        "certificate_id": event.certificate_id or "", "severity": event.severity or "",
        "dedup_key": event.dedup_key or "",
        "attempts-TOTAL_FORMS": "0", "attempts-INITIAL_FORMS": "0",
        "attempts-MIN_NUM_FORMS": "0", "attempts-MAX_NUM_FORMS": "0",
        "operator_actions-TOTAL_FORMS": "0", "operator_actions-INITIAL_FORMS": "0",
        "operator_actions-MIN_NUM_FORMS": "0", "operator_actions-MAX_NUM_FORMS": "0",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("recipient", "ops@example.com\r\nBcc: victim@example.com", "must not contain line breaks"),
        ("message", "x" * 70_000, "the limit is 65536"),
    ],
)
def test_the_admin_refuses_what_the_api_refuses(field, value, message, admin_client, event_in):
    dead = event_in("dead")

    response = admin_client.post(f"{CHANGELIST}{dead.id}/change/", change_form(dead, **{field: value}))

    assert response.status_code == 200  # the form again, with the error
    assert message in response.content.decode()
    assert NotificationEvent.objects.get(id=dead.id).recipient == dead.recipient


def test_an_admin_edit_never_writes_back_delivery_state_a_worker_recorded_meanwhile(
    admin_client, event_in, monkeypatch
):
    failed = event_in("failed")
    clean = NotificationEventForm.clean

    def worker_records_meanwhile(form):
        NotificationEvent.objects.filter(id=failed.id).update(
            status="sent", sent_at=timezone.now(), next_retry_at=None, last_error=None
        )
        return clean(form)

    monkeypatch.setattr(NotificationEventForm, "clean", worker_records_meanwhile)

    response = admin_client.post(f"{CHANGELIST}{failed.id}/change/", change_form(failed, recipient="new@example.com"))

    assert response.status_code == 302
    event = NotificationEvent.objects.get(id=failed.id)
    assert (event.recipient, event.status, event.last_error) == ("new@example.com", "sent", None)
