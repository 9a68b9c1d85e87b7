"""Dead-letter triage through the REST API: time and error filters, dry runs, failure groups, CSV export."""
import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.actors import Actor
from notifications.errors import InvalidInput
from notifications.models import CAUSE_LENGTH, NotificationEvent
from notifications.notifiers import DeliveryResult
from notifications.operations.events import dismiss_group, mark_read, requeue_group
from notifications.queries.events import BulkPreview, get_event, preview_mark_read, preview_requeue
from notifications.queries.groups import dead_letter, failure_groups
from tests.api.conftest import assert_error
from tests.deliveries import claim, record

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
OPERATOR = Actor("alice", "api")


@pytest.fixture
def dead_at(make_event, settings):
    """An event that went dead at `when`, created an hour before: by a permanent failure, or by a transient one
    that was its last retry."""

    def make(when, error="Webhook receiver answered HTTP 410: gone", permanent=True, **fields):
        event = make_event(**fields)
        NotificationEvent.objects.filter(id=event.id).update(
            created_at=when - timedelta(hours=1),
            retry_count=0 if permanent else settings.CERTCTL_NOTIFICATION_MAX_ATTEMPTS - 1,
        )
        result = (
            DeliveryResult.permanent_failure(error, http_status=410) if permanent else DeliveryResult.transient(error)
        )
        assert record(claim(event.id, now=when), result, when) == "dead"
        return get_event(event.id)

    return make


def ids(response):
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["data"]}


# --- filters --------------------------------------------------------------------


def test_failed_after_and_before_select_by_the_last_attempt(reader, dead_at):
    early, late = dead_at(T0), dead_at(T0 + timedelta(hours=2))
    assert ids(reader.get("/api/v1/notifications", {"failed_after": "2026-11-29T09:00:00Z"})) == {late.id}
    assert ids(reader.get("/api/v1/notifications", {"failed_before": "2026-11-29T09:00:00Z"})) == {early.id}
    # An offset is honoured: 10:00+02:00 is 08:00 UTC.
    since_eight_utc = reader.get("/api/v1/notifications", {"failed_after": "2026-11-29T10:00:00+02:00"})
    assert ids(since_eight_utc) == {early.id, late.id}


def test_failed_after_leaves_out_events_whose_last_attempt_succeeded(reader, make_event, dead_at):
    dead = dead_at(T0)
    sent = make_event()
    record(claim(sent.id, now=T0), DeliveryResult.success(http_status=200), T0)
    assert ids(reader.get("/api/v1/notifications", {"failed_after": "2026-11-29"})) == {dead.id}


def test_created_after_and_before(reader, dead_at):
    early, late = dead_at(T0), dead_at(T0 + timedelta(days=1))
    assert ids(reader.get("/api/v1/notifications", {"created_after": "2026-11-29T12:00:00Z"})) == {late.id}
    assert ids(reader.get("/api/v1/notifications", {"created_before": "2026-11-29T12:00:00Z"})) == {early.id}


def test_error_is_case_insensitive_text_in_the_last_error(reader, dead_at):
    gone = dead_at(T0)
    dead_at(T0, error="Slack webhook: could not connect")
    assert ids(reader.get("/api/v1/notifications", {"error": "http 410"})) == {gone.id}


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"failed_after": "yesterday"}, "failed_after", "must be an ISO 8601 time"),
        ({"created_before": "2026-13-01"}, "created_before", "must be an ISO 8601 time"),
        ({"error": "x" * 201}, "error", "at most 200 characters"),
    ],
)
def test_bad_filter_values_are_400_naming_the_field(reader, query, field, message):
    body = assert_error(reader.get("/api/v1/notifications", query), 400, "Bad Request", message)
    assert field in body["fields"]


# --- bulk requeue with filters and dry runs -------------------------------------


def test_recover_since_requeues_what_died_after_a_time(admin, dead_at):
    before, after = dead_at(T0), dead_at(T0 + timedelta(hours=2))
    response = admin.post(
        "/api/v1/notifications/requeue", {"status": "dead", "failed_after": "2026-11-29T09:00:00Z"}, format="json"
    )
    assert response.json() == {"requeued": 1, "skipped": 0}
    assert get_event(after.id).status == "pending"
    assert get_event(before.id).status == "dead"


def test_bulk_bad_filter_value_is_400_naming_it(admin):
    response = admin.post("/api/v1/notifications/requeue", {"failed_after": "last tuesday"}, format="json")
    body = assert_error(response, 400, "Bad Request", "failed_after: must be an ISO 8601 time")
    assert set(body["fields"]) == {"failed_after"}


def test_dry_run_requeue_counts_and_samples_and_changes_nothing(admin, dead_at, make_event):
    dead = [dead_at(T0 + timedelta(minutes=n), channel="Slack") for n in range(25)]
    pending = make_event(channel="Slack")
    response = admin.post(
        "/api/v1/notifications/requeue", {"delivery_status": "dead", "channel": "Slack", "dry_run": True}, format="json"
    )
    body = response.json()
    assert body["would_requeue"] == 25
    assert body["skipped"] == 0
    assert len(body["sample"]) == 20
    assert set(body["sample"]) <= {e.id for e in dead}
    assert NotificationEvent.objects.filter(status="dead").count() == 25
    by_ids = admin.post(
        "/api/v1/notifications/requeue", {"ids": [dead[0].id, pending.id, "nope"], "dry_run": True}, format="json"
    )
    assert by_ids.json() == {"would_requeue": 1, "skipped": 2, "sample": [dead[0].id]}
    assert get_event(dead[0].id).status == "dead"
    assert not get_event(dead[0].id).operator_actions.exists()


def test_a_dry_run_samples_the_newest_20_and_counts_the_rest_of_the_selection_as_skipped(dead_at, make_event):
    dead = [dead_at(T0 + timedelta(minutes=n), channel="Slack") for n in range(25)]
    pending = make_event(channel="Slack")  # selected, but not requeueable
    make_event(channel="Webhook")

    requeue = preview_requeue(filters={"channel": "Slack"}, now=T0 + timedelta(hours=1))
    mark_read = preview_mark_read(filters={"channel": "Slack"})

    newest_first = [event.id for event in reversed(dead)]
    assert requeue == BulkPreview(would_change=25, skipped=1, sample=newest_first[:20])
    assert mark_read == BulkPreview(would_change=26, skipped=0, sample=[pending.id, *newest_first[:19]])
    assert NotificationEvent.objects.filter(status="dead", read_at__isnull=True).count() == 25


def test_dry_run_mark_read_changes_nothing(reader, dead_at):
    dead = dead_at(T0)
    response = reader.post("/api/v1/notifications/read", {"status": "dead", "dry_run": True}, format="json")
    assert response.json() == {"would_mark_read": 1, "skipped": 0, "sample": [dead.id]}
    assert get_event(dead.id).read_at is None


def test_dry_run_still_needs_an_admin_key_to_requeue(reader, dead_at):
    dead_at(T0)
    response = reader.post("/api/v1/notifications/requeue", {"status": "dead", "dry_run": True}, format="json")
    assert response.status_code == 403


def test_dry_run_must_be_a_boolean(admin):
    response = admin.post("/api/v1/notifications/requeue", {"status": "dead", "dry_run": "yes"}, format="json")
    assert_error(response, 400, "Bad Request", "dry_run: must be true or false")


# --- failure groups ---------------------------------------------------------------


def test_groups_merge_errors_that_differ_only_in_ids_numbers_and_times(reader, dead_at):
    for n, when in enumerate((T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=9))):
        dead_at(
            when,
            error=f"HTTP 503 from receiver at {when.isoformat()} after {n}00 ms "
            f"(request 3fa85f64-5717-4562-b3fc-2c963f66a{n:03d})",
        )
    latest = dead_at(T0 + timedelta(hours=1), channel="Slack", error="Slack webhook: could not connect (req_a81kx0q2)")
    response = reader.get("/api/v1/notifications/dead-letter/groups")
    body = response.json()

    assert body["total"] == 2
    first, second = body["data"]
    assert first["channel"] == "Webhook"
    assert first["count"] == 3
    assert first["kind"] == "permanent"
    assert first["error"] == "HTTP 503 from receiver at <time> after <n> ms (request <uuid>)"
    assert (first["first_at"], first["last_at"]) == ("2026-11-29T08:00:00Z", "2026-11-29T08:09:00Z")
    assert second == {
        "channel": "Slack", "kind": "permanent", "error": "Slack webhook: could not connect (<id>)", "count": 1,
        "first_at": "2026-11-29T09:00:00Z", "last_at": "2026-11-29T09:00:00Z", "sample_id": latest.id,
    }


def test_groups_take_the_list_filters_and_leave_out_dismissed_ones(reader, dead_at):
    dead_at(T0, channel="Slack")
    webhook = dead_at(T0)
    dismissed = dead_at(T0, error="another cause")
    mark_read(dismissed.id, Actor("alice", "api"))

    body = reader.get("/api/v1/notifications/dead-letter/groups", {"channel": "Webhook"}).json()
    assert [(g["channel"], g["count"], g["sample_id"]) for g in body["data"]] == [("Webhook", 1, webhook.id)]
    with_dismissed = reader.get(
        "/api/v1/notifications/dead-letter/groups", {"delivery_status": "dead", "read": "true"}
    ).json()
    assert [g["error"] for g in with_dismissed["data"]] == ["another cause"]


def test_groups_reject_bad_filters(reader):
    response = reader.get("/api/v1/notifications/dead-letter/groups", {"failed_after": "soon"})
    assert_error(response, 400, "Bad Request", "failed_after")


def test_a_refusal_and_an_outage_are_different_causes_of_their_own_kind(reader, dead_at):
    dead_at(T0, error="Webhook receiver answered HTTP 400: bad payload")
    dead_at(T0, error="Webhook receiver answered HTTP 503: bad payload", permanent=False)
    dead_at(T0 + timedelta(minutes=1), error="Webhook receiver answered HTTP 503: bad payload", permanent=False)

    body = reader.get("/api/v1/notifications/dead-letter/groups").json()

    assert [(g["kind"], g["error"], g["count"]) for g in body["data"]] == [
        ("transient", "Webhook receiver answered HTTP 503: bad payload", 2),
        ("permanent", "Webhook receiver answered HTTP 400: bad payload", 1),
    ]


def test_the_same_cause_is_two_groups_when_one_failure_was_permanent_and_the_other_ran_out_of_retries(dead_at):
    dead_at(T0, error="HTTP 503")
    dead_at(T0, error="HTTP 503", permanent=False)

    assert sorted((g.kind, g.count) for g in failure_groups()) == [("permanent", 1), ("transient", 1)]


def test_groups_sort_by_size_then_by_the_latest_failure_and_sample_the_last_failure(dead_at):
    # Created in one order, failed in the other: the group's times and sample follow the failures.
    late_failure = dead_at(T0 + timedelta(hours=2), error="HTTP 500 from receiver")
    NotificationEvent.objects.filter(id=late_failure.id).update(created_at=T0 - timedelta(days=1))
    dead_at(T0 + timedelta(hours=1), error="HTTP 500 from receiver")
    dead_at(T0 + timedelta(hours=3), channel="Slack", error="Slack webhook: could not connect")
    dead_at(T0 + timedelta(hours=4), channel="Teams", error="Teams: could not connect")
    dead_at(T0 + timedelta(hours=5), channel="Teams", error="Teams: could not connect")

    groups = failure_groups()

    # Two of 2: the one that failed last first; then the single one.
    assert [(g.channel, g.error, g.count) for g in groups] == [
        ("Teams", "Teams: could not connect", 2), ("Webhook", "HTTP 500 from receiver", 2),
        ("Slack", "Slack webhook: could not connect", 1),
    ]
    assert (groups[1].first_at, groups[1].last_at, groups[1].sample_id) == (
        T0 + timedelta(hours=1), T0 + timedelta(hours=2), late_failure.id,
    )


def test_the_same_error_on_two_channels_is_two_groups(dead_at):
    dead_at(T0, error="HTTP 503")
    dead_at(T0, channel="Slack", error="HTTP 503")

    assert sorted((g.channel, g.count) for g in failure_groups()) == [("Slack", 1), ("Webhook", 1)]


def test_of_failures_at_the_same_moment_the_group_samples_the_newest_event(dead_at):
    # Inserted out of id order, so that neither insertion nor storage order can stand in for the id order.
    for event_id in ("notif-2", "notif-3", "notif-1"):
        dead_at(T0, error="HTTP 500", event_id=event_id)
    created_earlier = dead_at(T0, error="HTTP 500", event_id="notif-9")
    NotificationEvent.objects.filter(id=created_earlier.id).update(created_at=T0 - timedelta(hours=2))

    [group] = failure_groups()

    # The newest created first; of those created at one moment, the highest id.
    assert (group.count, group.sample_id) == (4, "notif-3")


def test_a_mark_read_dry_run_by_ids_counts_unknown_and_read_ones_as_skipped(make_event):
    unread, read = make_event(), make_event()
    mark_read(read.id, OPERATOR)

    preview = preview_mark_read(ids=[unread.id, read.id, "notif-unknown"])

    assert preview == BulkPreview(would_change=1, skipped=2, sample=[unread.id])


def test_a_dry_runs_sample_is_newest_first_and_in_id_order_within_one_moment(make_event):
    for event_id in ("notif-2", "notif-4", "notif-1", "notif-5", "notif-3", "notif-0"):
        make_event(event_id=event_id)
    NotificationEvent.objects.update(created_at=T0)
    NotificationEvent.objects.filter(id="notif-0").update(created_at=T0 + timedelta(minutes=1))

    preview = preview_mark_read(ids=["notif-3", "notif-1", "notif-5", "notif-0"])

    assert preview.sample == ["notif-0", "notif-5", "notif-3", "notif-1"]


@pytest.mark.parametrize(
    ("filters", "listed"),
    [
        ({}, {"open"}),
        ({"status": "", "channel": None}, {"open"}),
        ({"status": "dead"}, {"open"}),
        ({"status": "read"}, {"dismissed"}),
        ({"delivery_status": "dead"}, {"open", "dismissed"}),
        ({"read": "true"}, {"dismissed"}),
        ({"read": "false"}, {"open"}),
    ],
)
def test_the_dead_letter_queue_leaves_out_dismissed_events_unless_a_state_filter_asks(
    dead_at, make_event, filters, listed
):
    events = {"open": dead_at(T0), "dismissed": dead_at(T0)}
    mark_read(events["dismissed"].id, OPERATOR)
    make_event()  # pending: never in the dead-letter queue

    assert set(dead_letter(filters).values_list("id", flat=True)) == {events[name].id for name in listed}


def test_a_dead_event_never_attempted_is_grouped_at_its_creation_time(make_event):
    event = make_event()
    NotificationEvent.objects.filter(id=event.id).update(
        status="dead", created_at=T0, last_error="retired by hand", cause="retired by hand", cause_kind="permanent"
    )

    [group] = failure_groups()
    assert (group.error, group.first_at, group.last_at, group.sample_id) == ("retired by hand", T0, T0, event.id)


def test_groups_of_2000_dead_events_read_the_stored_causes_in_a_few_queries_never_the_errors(
    reader, dead_at, make_event
):
    # N1: a 50 KB reply made of "a-a-a-…" (quadratic for the old normaliser) among 2,000 dead events.
    huge = dead_at(T0, error="Webhook receiver answered HTTP 500: " + "a-" * 25_000)
    template = make_event()
    NotificationEvent.objects.bulk_create(
        NotificationEvent(
            id=f"notif-bulk-{n:04d}", type=template.type, channel=("Webhook", "Slack", "Teams")[n % 3],
            recipient=template.recipient, message=template.message, status="dead", retry_count=5,
            last_error=f"HTTP 503 (request {n:04d}a81kx0q2)", cause="HTTP 503 (request <id>)", cause_kind="transient",
            last_attempt_at=T0 + timedelta(seconds=n), created_at=T0,
        )
        for n in range(1999)
    )

    with CaptureQueriesContext(connection) as queries:
        response = reader.get("/api/v1/notifications/dead-letter/groups")

    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 4
    assert sum(g["count"] for g in body["data"]) == 2000
    assert [g["count"] for g in body["data"]] == [667, 666, 666, 1]
    [cut] = [g for g in body["data"] if g["sample_id"] == huge.id]
    assert cut["error"].startswith("Webhook receiver answered HTTP 500: a-a-a-")
    assert cut["error"].endswith("…")
    assert len(cut["error"]) == CAUSE_LENGTH
    event_queries = [q["sql"] for q in queries.captured_queries if "notification_events" in q["sql"]]
    assert len(event_queries) == 1
    assert not [sql for sql in queries.captured_queries if "last_error" in sql["sql"]]


@pytest.mark.postgres
def test_the_groups_statement_finds_each_sample_once_per_group_through_the_cause_index(dead_at, make_event):
    template = make_event()
    NotificationEvent.objects.bulk_create(
        NotificationEvent(
            id=f"notif-bulk-{n:04d}", type=template.type, channel="Webhook", recipient=template.recipient,
            message=template.message, status="dead", last_error="HTTP 503", cause=f"HTTP 503 #{n % 4}",
            cause_kind="transient", last_attempt_at=T0 + timedelta(seconds=n),
        )
        for n in range(400)
    )
    with CaptureQueriesContext(connection) as queries:
        assert len(failure_groups()) == 4
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + queries.captured_queries[-1]["sql"])
        plan = cursor.fetchone()[0][0]["Plan"]

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    [sample] = [node for node in nodes(plan) if node.get("Subplan Name", "").startswith("SubPlan")]
    # Once per group, not once per dead event (as it would be if it were part of the GROUP BY) …
    assert sample["Actual Loops"] == 4
    # … and each time the first entry of its group in the cause index, not a sort of the group.
    assert [node.get("Index Name") for node in nodes(sample) if "Index Name" in node] == ["notif_dead_cause_idx"]
    assert not [node for node in nodes(sample) if node["Node Type"] == "Sort"]


def group_of_three(dead_at):
    """Three dead Webhook events of one cause, and one event each of another cause, of another kind and of another
    channel."""
    group = [dead_at(T0 + timedelta(minutes=n), error=f"HTTP 503 (request {n}a81kx0q2)") for n in range(3)]
    others = [
        dead_at(T0, error="HTTP 410 gone"), dead_at(T0, error="HTTP 503 (request 7a81kx0q2)", permanent=False),
        dead_at(T0, channel="Slack", error="HTTP 503 (request 9a81kx0q2)"),
    ]
    return group, others


LATER = T0 + timedelta(hours=3)
GROUP = ("Webhook", "permanent", "HTTP 503 (request <id>)")


def test_requeue_group_takes_every_event_of_the_group_and_no_other(dead_at):
    group, others = group_of_three(dead_at)

    result = requeue_group(OPERATOR, *GROUP, now=LATER)

    assert (result.requeued, result.skipped) == (3, 0)
    assert [get_event(e.id).status for e in group + others] == ["pending"] * 3 + ["dead"] * 3
    assert {get_event(e.id).updated_at for e in group} == {LATER}
    stored = NotificationEvent.objects.filter(id__in=[e.id for e in group])
    assert {(e.cause, e.cause_kind) for e in stored} == {(None, None)}


def test_dismiss_group_takes_every_event_of_the_group_and_no_other(dead_at):
    group, others = group_of_three(dead_at)

    result = dismiss_group(OPERATOR, *GROUP, now=LATER)

    assert (result.marked_read, result.dismissed, result.skipped) == (3, 3, 0)
    assert [get_event(e.id).read_at for e in group + others] == [LATER] * 3 + [None] * 3


@pytest.mark.parametrize("action", ["requeue", "dismiss"])
def test_a_group_action_takes_only_the_events_the_list_filters_select(dead_at, action):
    group, _ = group_of_three(dead_at)
    # dead_at creates each event an hour before it fails: only the last two were created after 07:00:30.
    filters = {"created_after": "2026-11-29T07:00:30Z"}

    if action == "requeue":
        assert requeue_group(OPERATOR, *GROUP, filters).requeued == 2
    else:
        assert dismiss_group(OPERATOR, *GROUP, filters).marked_read == 2
    assert get_event(group[0].id).status == "dead"
    assert get_event(group[0].id).read_at is None


def test_a_group_action_leaves_dismissed_events_alone_unless_the_filters_bring_them_in(dead_at):
    group, _ = group_of_three(dead_at)
    mark_read(group[0].id, OPERATOR)

    assert requeue_group(OPERATOR, *GROUP).requeued == 2
    assert get_event(group[0].id).status == "dead"
    assert requeue_group(OPERATOR, *GROUP, {"delivery_status": "dead"}).requeued == 1


def test_a_group_of_an_unknown_kind_is_refused():
    with pytest.raises(InvalidInput, match="unknown kind 'fatal'"):
        requeue_group(OPERATOR, "Webhook", "fatal", "HTTP 503")


def test_the_cause_filter_selects_a_group_for_bulk_requeue_through_the_api(admin, dead_at):
    group, others = group_of_three(dead_at)
    [listed] = [g for g in admin.get("/api/v1/notifications/dead-letter/groups").json()["data"] if g["count"] == 3]

    response = admin.post(
        "/api/v1/notifications/requeue",
        {"status": "dead", "channel": listed["channel"], "cause_kind": listed["kind"], "cause": listed["error"]},
        format="json",
    )

    assert response.json() == {"requeued": 3, "skipped": 0}
    assert [get_event(e.id).status for e in group + others] == ["pending"] * 3 + ["dead"] * 3


def test_a_bad_cause_filter_is_a_400_naming_it(admin):
    response = admin.post("/api/v1/notifications/requeue", {"cause_kind": "fatal"}, format="json")
    assert_error(response, 400, "Bad Request", "cause_kind")
    assert_error(
        admin.post("/api/v1/notifications/requeue", {"cause": "x" * 241}, format="json"), 400, "Bad Request", "cause"
    )


# --- CSV export ---------------------------------------------------------------------


def test_csv_is_every_matching_row_streamed(reader, make_event):
    for n in range(60):
        make_event(certificate_id=f"cert-{n}")
    make_event(channel="Slack")
    response = reader.get("/api/v1/notifications", {"format": "csv", "channel": "Webhook", "per_page": "10"})

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="notifications-')
    data = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(data) == 60
    assert data[0]["status"] == "pending"
    assert data[0]["delivery_status"] == "pending"
    assert [row["certificate_id"] for row in data[:2]] == ["cert-59", "cert-58"]  # newest first


def test_csv_neutralises_formulas_from_alert_text(reader, make_event):
    make_event(message="=HYPERLINK(\"http://evil.example\",\"click\")", recipient="@ops")
    export = reader.get("/api/v1/notifications", {"format": "csv"})
    row = next(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert row["message"].startswith("'=HYPERLINK")
    assert row["recipient"] == "'@ops"


def test_csv_errors_are_the_json_error_body(reader, anonymous):
    body = assert_error(reader.get("/api/v1/notifications", {"format": "csv", "failed_after": "x"}), 400, "Bad Request")
    assert "failed_after" in body["fields"]
    assert anonymous.get("/api/v1/notifications", {"format": "csv"}).status_code == 401


def test_an_unknown_format_is_a_400(reader):
    assert_error(
        reader.get("/api/v1/notifications", {"format": "xml"}), 400, "Bad Request", "format: unknown format 'xml'"
    )
