"""The Django admin for notification events: list, search, read-only delivery state, bulk requeue."""
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.test import Client

from notifications.models import NotificationEvent, OperatorAction
from tests.deliveries import destination_state, state_of
from tests.ui.conftest import PASSWORD

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/notifications/notificationevent/"


def test_requeue_selected_only_requeues_failed_and_dead(admin_client, event_in):
    dead, failed = event_in("dead"), event_in("failed")
    sent, pending = event_in("sent"), event_in("pending")
    attempts_before = {e.id: e.attempts.count() for e in (dead, failed, sent, pending)}
    response = admin_client.post(
        CHANGELIST, {"action": "requeue_selected", "_selected_action": [dead.id, failed.id, sent.id, pending.id]}
    )
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["2 requeued, 2 skipped (not failed or dead)."]
    statuses = dict(NotificationEvent.objects.values_list("id", "status"))
    assert statuses == {dead.id: "pending", failed.id: "pending", sent.id: "sent", pending.id: "pending"}
    for event in (dead, failed):
        event.refresh_from_db()
        assert (event.retry_count, event.next_retry_at, event.last_error) == (0, None, None)
    assert {e.id: e.attempts.count() for e in (dead, failed, sent, pending)} == attempts_before
    assert attempts_before[dead.id] == 5
    actions = OperatorAction.objects.order_by("event_id")
    assert sorted((a.event_id, a.actor, a.source, a.bulk) for a in actions) == sorted(
        [(dead.id, "admin", "admin", True), (failed.id, "admin", "admin", True)]
    )


def test_requeue_selected_with_nothing_eligible_warns(admin_client, event_in):
    sent = event_in("sent")
    response = admin_client.post(CHANGELIST, {"action": "requeue_selected", "_selected_action": [sent.id]}, follow=True)
    assert "0 requeued, 1 skipped (not failed or dead)." in response.content.decode()
    sent.refresh_from_db()
    assert sent.status == "sent"


def test_changelist_columns_filters_and_search(admin_client, event_in):
    dead = event_in("dead", certificate_id="cert-777", error="HTTP 503 " + "y" * 200)
    other = event_in("sent", certificate_id="cert-1")
    body = admin_client.get(CHANGELIST).content.decode()
    assert "Retry 5/5" in body
    assert "HTTP 503 " + "y" * 70 in body
    assert "y" * 100 not in body
    for heading in ("Status", "Channel", "Type", "Retries", "Next retry at", "Last error"):
        assert heading in body
    assert "By status" in body
    assert "By channel" in body
    assert "By type" in body
    found = admin_client.get(CHANGELIST, {"q": "cert-777"}).content.decode()
    assert dead.id in found
    assert other.id not in found
    assert dead.id in admin_client.get(CHANGELIST, {"q": dead.id}).content.decode()
    assert other.id in admin_client.get(CHANGELIST, {"status__exact": "sent"}).content.decode()
    assert dead.id not in admin_client.get(CHANGELIST, {"status__exact": "sent"}).content.decode()


def test_change_page_shows_attempts_and_keeps_delivery_state_read_only(admin_client, event_in):
    dead = event_in("dead")
    url = f"{CHANGELIST}{dead.id}/change/"
    body = admin_client.get(url).content.decode()
    assert body.count("transient_failure") + body.count("Transient failure") >= 5
    assert 'name="status"' not in body
    assert 'name="retry_count"' not in body
    assert 'name="next_retry_at"' not in body
    assert 'name="claim_token"' not in body
    response = admin_client.post(url, {
        "type": dead.type, "channel": dead.channel, "recipient": "new@example.com", "message": dead.message,
        "status": "sent", "retry_count": "0",
        "attempts-TOTAL_FORMS": "0", "attempts-INITIAL_FORMS": "5",
        "attempts-MIN_NUM_FORMS": "0", "attempts-MAX_NUM_FORMS": "0",
        "operator_actions-TOTAL_FORMS": "0", "operator_actions-INITIAL_FORMS": "0",
        "operator_actions-MIN_NUM_FORMS": "0", "operator_actions-MAX_NUM_FORMS": "0",
    })
    assert response.status_code == 302
    dead.refresh_from_db()
    assert (dead.status, dead.retry_count, dead.recipient) == ("dead", 5, "new@example.com")
    assert dead.attempts.count() == 5


def test_events_are_not_added_through_the_admin(admin_client):
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403


@pytest.fixture
def staff_client(client: Client, django_user_model: type[User]) -> Callable[..., Client]:
    """log in a staff user holding the given notificationevent permissions ("view", "change")."""

    def login(*kinds: str) -> Client:
        user = django_user_model.objects.create_user("-".join(("staff",) + kinds), password=PASSWORD, is_staff=True)
        user.user_permissions.add(
            *Permission.objects.filter(codename__in=[f"{kind}_notificationevent" for kind in kinds])
        )
        client.force_login(user)
        return client

    return login


def test_staff_who_may_change_events_are_offered_requeue_selected(staff_client, event_in):
    dead = event_in("dead")
    client = staff_client("view", "change")

    assert 'value="requeue_selected"' in client.get(CHANGELIST).content.decode()
    client.post(CHANGELIST, {"action": "requeue_selected", "_selected_action": [dead.id]})
    dead.refresh_from_db()
    assert dead.status == "pending"


def test_staff_who_may_only_view_events_are_not_offered_requeue_selected_nor_can_post_it(staff_client, event_in):
    dead = event_in("dead")
    client = staff_client("view")

    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert dead.id in page.content.decode()
    assert 'value="requeue_selected"' not in page.content.decode()
    assert "Requeue selected" not in page.content.decode()

    client.post(CHANGELIST, {"action": "requeue_selected", "_selected_action": [dead.id]})
    dead.refresh_from_db()
    assert (dead.status, dead.retry_count) == ("dead", 5)
    assert not OperatorAction.objects.exists()


def test_mark_read_selected_dismisses_dead_ones_and_skips_read_ones(admin_client, event_in):
    dead, pending = event_in("dead"), event_in("pending")
    already = event_in("sent")
    admin_client.post(CHANGELIST, {"action": "mark_read_selected", "_selected_action": [already.id]})
    response = admin_client.post(
        CHANGELIST, {"action": "mark_read_selected", "_selected_action": [dead.id, pending.id, already.id]}
    )
    assert [str(m) for m in get_messages(response.wsgi_request)][-1] == (
        "2 marked read (dead ones are dismissed from the dead-letter queue), 1 skipped (already read)."
    )
    states = {e.id: (e.status, e.read_at is not None) for e in NotificationEvent.objects.all()}
    # Reading never changes the delivery state: the pending one is still delivered.
    assert states == {dead.id: ("dead", True), pending.id: ("pending", True), already.id: ("sent", True)}
    assert set(OperatorAction.objects.values_list("event_id", "action", "source", "bulk")) == {
        (e.id, "mark_read", "admin", True) for e in (dead, pending, already)
    }


def test_staff_with_view_permission_may_mark_read_but_not_requeue(client, django_user_model, event_in):
    from django.contrib.auth.models import Permission

    staff = django_user_model.objects.create_user("auditor", password="x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_notificationevent"))
    client.force_login(staff)
    dead = event_in("dead")
    body = client.get(CHANGELIST).content.decode()
    assert 'value="mark_read_selected"' in body
    assert 'value="requeue_selected"' not in body
    client.post(CHANGELIST, {"action": "requeue_selected", "_selected_action": [dead.id]})
    client.post(CHANGELIST, {"action": "mark_read_selected", "_selected_action": [dead.id]})
    dead.refresh_from_db()
    assert (dead.status, dead.read_at is not None) == ("dead", True)
    assert list(OperatorAction.objects.values_list("action", "actor")) == [("mark_read", "auditor")]


def test_destinations_are_paused_and_resumed_through_admin_actions_by_staff_who_may_change(staff_client):
    from notifications.models import ConfigurationAction

    destination_state("Webhook")
    states = "/admin/notifications/destinationstate/"
    viewer = staff_client("view")
    viewer.post(states, {"action": "pause_selected", "_selected_action": ["Webhook"]})
    assert state_of("Webhook").state == "closed"

    operator = staff_client("view", "change")
    assert 'value="pause_selected"' in operator.get(states).content.decode()
    operator.post(states, {"action": "pause_selected", "_selected_action": ["Webhook"]})
    assert state_of("Webhook").state == "paused"
    operator.post(states, {"action": "resume_selected", "_selected_action": ["Webhook"]})
    assert state_of("Webhook").state == "closed"
    assert list(ConfigurationAction.objects.order_by("id").values_list("action", "source")) == [
        ("pause", "admin"), ("resume", "admin"),
    ]
