"""Dead-letter triage in the UI: time and error filters, group by cause with group actions, CSV export."""
import csv
import io
import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from notifications.models import NotificationEvent
from tests.ui.test_views import rows

pytestmark = pytest.mark.django_db


def texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_error_and_time_filters_narrow_the_dead_letter_tab(viewer_client, event_in):
    timeout = event_in("dead", error="Slack webhook: no answer within the read timeout")
    refused = event_in("dead", error="Webhook receiver answered HTTP 410: gone")
    NotificationEvent.objects.filter(id=refused.id).update(created_at=timezone.now() - timedelta(days=3))

    assert rows(viewer_client.get("/notifications/", {"tab": "dead", "error": "READ TIMEOUT"})) == [timeout.id]
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert rows(viewer_client.get("/notifications/", {"tab": "dead", "created_after": since})) == [timeout.id]
    assert rows(viewer_client.get("/notifications/", {"tab": "dead", "created_before": since})) == [refused.id]
    # event_in's attempts happened two hours ago.
    recent = (timezone.now() - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    assert rows(viewer_client.get("/notifications/", {"tab": "dead", "failed_after": recent})) == []
    before_recent = viewer_client.get("/notifications/", {"tab": "dead", "failed_before": recent})
    assert set(rows(before_recent)) == {timeout.id, refused.id}


def test_a_bad_time_is_a_400_naming_the_field(viewer_client):
    response = viewer_client.get("/notifications/", {"tab": "dead", "failed_after": "yesterday"})
    assert response.status_code == 400
    assert "must be a time such as 2026-11-29T09:00 (UTC)" in response.content.decode()


def test_requeue_all_matching_takes_the_time_filter(operator_client, event_in):
    old, new = event_in("dead"), event_in("dead")
    NotificationEvent.objects.filter(id=old.id).update(created_at=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")

    confirm = operator_client.get("/notifications/requeue-matching/", {"created_after": since})
    assert "Requeue <strong>1</strong> dead notification" in confirm.content.decode()
    operator_client.post("/notifications/requeue-matching/", {"created_after": since})
    assert NotificationEvent.objects.get(id=new.id).status == "pending"
    assert NotificationEvent.objects.get(id=old.id).status == "dead"


def test_group_by_cause_lists_groups_with_counts(viewer_client, event_in):
    for n in (1, 2):
        event_in("dead", error=f"Webhook receiver answered HTTP 503: request {n}f9a7c0e1d2b3 failed")
    event_in("dead", channel="Slack", error="Slack webhook: could not connect")
    body = viewer_client.get("/notifications/", {"tab": "dead", "view": "groups"}).content.decode()

    assert "2 causes, 3 notifications in the dead-letter queue" in body
    assert "Webhook receiver answered HTTP 503: request &lt;hex&gt; failed" in body
    assert body.count('data-group-channel="Webhook" data-group-kind="transient"') == 1
    # A viewer may dismiss, not requeue.
    assert "Dismiss group" in body
    assert "Requeue group" not in body


def test_group_by_cause_shows_every_group_on_one_page_without_the_lists_paging(viewer_client, make_event):
    template = make_event()
    NotificationEvent.objects.bulk_create(
        NotificationEvent(
            id=f"notif-dead-{n:03d}", type=template.type, channel="Webhook", recipient=template.recipient,
            message=template.message, status="dead", last_error=f"cause number {n}", cause=f"cause number {n}",
            cause_kind="permanent", last_attempt_at=timezone.now() - timedelta(minutes=n),
        )
        for n in range(60)
    )
    NotificationEvent.objects.filter(id="notif-dead-007").update(
        cause="cause number 8", last_error="cause number 8", last_attempt_at=timezone.now() - timedelta(hours=2)
    )

    body = viewer_client.get("/notifications/", {"tab": "dead", "view": "groups", "page": "2"}).content.decode()

    assert "59 causes, 60 notifications in the dead-letter queue" in body
    assert body.count("data-group-channel=") == 59
    assert "Page 1 of" not in body
    assert "page 2 of" not in body
    # Largest first, then the one that failed last.
    causes = re.findall(r'<span class="error-text mono">([^<]*)</span>', body)
    assert causes[:3] == ["cause number 8", "cause number 0", "cause number 1"]


def test_a_groups_count_lists_its_notifications(viewer_client, event_in):
    same = [event_in("dead", error=f"HTTP 503 at 2026-11-2{n}T10:00:00Z") for n in (1, 2)]
    event_in("dead", error="HTTP 502 at 2026-11-21T10:00:00Z")
    body = viewer_client.get("/notifications/", {"tab": "dead", "view": "groups"}).content.decode()
    [link] = re.findall(r'<a href="([^"]+)" aria-label="List the 2 notifications of this cause">', body)

    listed = viewer_client.get(link.replace("&amp;", "&"))

    assert sorted(rows(listed)) == sorted(e.id for e in same)
    assert 'name="cause" value="HTTP 503 at &lt;time&gt;"' in listed.content.decode()  # kept by Apply filters


def test_requeue_group_requeues_only_that_group(operator_client, event_in):
    same = [event_in("dead", error=f"HTTP 503 at 2026-11-2{n}T10:00:00Z") for n in (1, 2)]
    other = event_in("dead", error="HTTP 410: gone")
    response = operator_client.post(
        "/notifications/requeue-group/",
        {
            "channel_group": "Webhook", "kind_group": "transient", "error_group": "HTTP 503 at <time>",
            "next": "/notifications/?tab=dead&view=groups",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/notifications/?tab=dead&view=groups"
    assert texts(response) == ["2 requeued, 0 skipped (not failed or dead)."]
    assert {NotificationEvent.objects.get(id=e.id).status for e in same} == {"pending"}
    assert NotificationEvent.objects.get(id=other.id).status == "dead"


def test_requeue_group_keeps_the_tab_filters(operator_client, event_in):
    webhook = event_in("dead", error="HTTP 503")
    slack = event_in("dead", channel="Slack", error="HTTP 503")
    group = {"kind_group": "transient", "error_group": "HTTP 503"}
    operator_client.post(
        "/notifications/requeue-group/", {"channel_group": "Webhook", **group, "certificate_id": "none"}
    )
    assert NotificationEvent.objects.get(id=webhook.id).status == "dead"  # no such certificate: nothing matched
    operator_client.post("/notifications/requeue-group/", {"channel_group": "Slack", **group})
    assert NotificationEvent.objects.get(id=slack.id).status == "pending"
    assert NotificationEvent.objects.get(id=webhook.id).status == "dead"


def test_a_group_of_another_kind_is_not_requeued(operator_client, event_in):
    dead = event_in("dead", error="HTTP 503")
    response = operator_client.post(
        "/notifications/requeue-group/",
        {"channel_group": "Webhook", "kind_group": "permanent", "error_group": "HTTP 503"},
    )
    assert texts(response) == ["0 requeued, 0 skipped (not failed or dead)."]
    assert NotificationEvent.objects.get(id=dead.id).status == "dead"


@pytest.mark.parametrize("kind", ["", "fatal"])
def test_a_group_action_without_a_valid_kind_changes_nothing_and_says_so(operator_client, event_in, kind):
    dead = event_in("dead", error="HTTP 503")
    response = operator_client.post(
        "/notifications/requeue-group/", {"channel_group": "Webhook", "kind_group": kind, "error_group": "HTTP 503"}
    )
    assert texts(response) == [
        "Nothing requeued: the group or its filters were not valid; reload the page and try again."
    ]
    assert NotificationEvent.objects.get(id=dead.id).status == "dead"


def test_requeue_group_needs_the_change_permission(viewer_client, event_in):
    dead = event_in("dead", error="HTTP 503")
    response = viewer_client.post(
        "/notifications/requeue-group/",
        {"channel_group": "Webhook", "kind_group": "transient", "error_group": "HTTP 503"},
    )
    assert response.status_code == 403
    assert NotificationEvent.objects.get(id=dead.id).status == "dead"


def test_a_viewer_dismisses_a_group(viewer_client, event_in):
    dead = event_in("dead", error="HTTP 503")
    response = viewer_client.post(
        "/notifications/dismiss-group/",
        {"channel_group": "Webhook", "kind_group": "transient", "error_group": "HTTP 503"},
    )
    assert texts(response) == ["1 dismissed, 0 skipped (already dismissed or gone)."]
    assert NotificationEvent.objects.get(id=dead.id).read_at is not None


def test_group_actions_are_post_only(operator_client):
    assert operator_client.get("/notifications/requeue-group/").status_code == 405
    assert operator_client.get("/notifications/dismiss-group/").status_code == 405


def test_export_is_every_matching_row_not_one_page(viewer_client, make_event, settings):
    for n in range(60):
        make_event(certificate_id=f"cert-{n}", channel="Slack")
    make_event(channel="Webhook")
    response = viewer_client.get("/notifications/export.csv", {"channel": "Slack", "page": "1"})

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="notifications-')
    data = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(data) == 60
    assert {row["channel"] for row in data} == {"Slack"}


def test_export_needs_a_login_and_valid_filters(viewer_client):
    assert Client().get("/notifications/export.csv")["Location"].startswith("/login/")
    response = viewer_client.get("/notifications/export.csv", {"failed_after": "soon"})
    assert response.status_code == 400
    assert "failed_after" in response.content.decode()


def test_the_list_links_to_the_export_with_its_filters(viewer_client, event_in):
    event_in("dead")
    body = viewer_client.get("/notifications/", {"tab": "dead", "channel": "Webhook", "page": "1"}).content.decode()
    assert 'href="/notifications/export.csv?tab=dead&amp;channel=Webhook" download>Download CSV' in body


def test_group_by_cause_with_show_dismissed_counts_dismissed_ones(viewer_client, event_in):
    event_in("dead", error="HTTP 503")
    dismissed = event_in("dead", error="HTTP 503")
    viewer_client.post(f"/notifications/{dismissed.id}/read/")
    hidden = viewer_client.get("/notifications/", {"tab": "dead", "view": "groups"}).content.decode()
    shown = viewer_client.get("/notifications/", {"tab": "dead", "view": "groups", "dismissed": "on"}).content.decode()
    assert re.search(r'class="group-count"><a [^>]*>1<', hidden)
    assert re.search(r'class="group-count"><a [^>]*>2<', shown)
