"""Dead-letter causes: the normaliser, the cause the engine stores when an event goes dead, what a requeue clears,
the database's rules and migration 0009's backfill."""
import importlib
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from notifications.causes import SCAN_LENGTH, cause_of
from notifications.engine import recording, sender
from notifications.models import CAUSE_LENGTH, NotificationEvent
from notifications.notifiers import DeliveryResult
from notifications.operations.certctl_import import READ_BEFORE_DELIVERY
from notifications.operations.events import requeue_event, requeue_events, requeue_group
from notifications.queries.groups import failure_groups
from tests.deliveries import claim, record
from tests.lifecycle.conftest import MINUTE, OPERATOR, T0, reload

NGINX_503 = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title><style>body { width: 35em; }</style></head>\r\n"
    "<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<!-- a comment -->"
    "<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>"
)


# --- the normaliser -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cause"),
    [
        ("HTTP 502 after 1500 ms", "HTTP 502 after <n> ms"),
        ("Webhook receiver answered HTTP 400: bad request", "Webhook receiver answered HTTP 400: bad request"),
        ("HTTP/1.1 429 Too Many Requests (retry in 30 s)", "HTTP/<n> 429 Too Many Requests (retry in <n> s)"),
        ("receiver said status=503", "receiver said status=503"),
        ("event notif-01JD0Z8F3QG5V8X4T6Y2R1M9KC rejected", "event <id> rejected"),
        ("Slack webhook: could not connect (req_a81kx0q2)", "Slack webhook: could not connect (<id>)"),
        ("digest 9f86d081884c7d659a2feaa0c55ad015 mismatch, key 0xDEADBEEF", "digest <hex> mismatch, key <hex>"),
        ("request 3fa85f64-5717-4562-b3fc-2c963f66afa6 failed", "request <uuid> failed"),
        ("at 2026-11-29 08:00:01.5+01:00 refused", "at <time> refused"),
        ("at 2026-11-29T08:00:01Z, again at 09:15", "at <time>, again at <time>"),
        ("SMTP server mail.example.com:25 refused", "SMTP server mail.example.com:<n> refused"),
        ("connect 10.0.0.12:8443 took 1.5 s", "connect <n>:<n> took <n> s"),
        ("Webhook receiver answered HTTP 503: " + NGINX_503,
         "Webhook receiver answered HTTP 503: <n> Service Temporarily Unavailable <n> Service Temporarily Unavailable "
         "nginx/<n>"),
        ("Teams answered HTTP 400: &lt;h1&gt;Bad payload&lt;/h1&gt; &amp; more",
         "Teams answered HTTP 400: Bad payload & more"),
        ("a < b and c > d", "a < b and c > d"),
        ("  spaced \n out\t\x1b[31m red \x9b ", "spaced out [<n>m red"),
        ("", ""),
        (None, ""),
    ],
)
def test_a_cause_keeps_what_stays_and_replaces_what_varies(raw, cause):
    assert cause_of(raw) == cause


def test_a_long_cause_is_cut_with_an_ellipsis_never_inside_a_placeholder():
    # 238 characters, then a placeholder that would end past the 239th.
    cause = cause_of("word " * 47 + "ab notif-01JD0Z8F3QG5V8X4T6Y2R1M9KC and more")
    assert cause == "word " * 47 + "ab…"
    assert len(cause_of("x" * 1000)) == CAUSE_LENGTH
    assert cause_of("x" * 1000).endswith("…")


def test_an_error_longer_than_the_part_read_is_marked_cut_even_when_its_cause_is_short():
    # Mostly markup: the text of the first SCAN_LENGTH characters is short, but there was more.
    error = "HTTP 503: <div>" + "<span></span>" * 200 + "down</div>"
    assert len(error) > SCAN_LENGTH
    assert cause_of(error) == "HTTP 503:…"


def test_only_a_bounded_prefix_of_the_error_is_read():
    # N1: 50 KB of "a-a-a-…" took the old normaliser 73 s. Nothing after the prefix can change the cause, so its
    # cost does not grow with the error.
    hyphens = "Webhook receiver answered HTTP 500: " + "a-" * 25_000
    junk = "".join(chr(0x20 + n % 95) for n in range(1_000_000))

    assert cause_of(hyphens) == cause_of(hyphens + junk) == cause_of(hyphens[:SCAN_LENGTH] + "<")
    assert cause_of(hyphens).startswith("Webhook receiver answered HTTP 500: a-a-a-")
    assert cause_of(hyphens).endswith("…")
    for shape in ("<a" * 25_000, "<!--" + "a" * 50_000, "<script>" + "<" * 50_000, "1." * 25_000, "&amp;" * 10_000):
        assert cause_of(shape) == cause_of(shape + junk)
    # A short cause from a long error: what follows the prefix is not read, even where it would show.
    markup = "HTTP 500: " + "<br>" * 1000
    assert cause_of(markup) == cause_of(markup + "the real reason") == "HTTP 500:…"


# --- the engine stores it ---------------------------------------------------------


@pytest.fixture(params=["as on this database", "as on SQLite"])
def backend(request, monkeypatch):
    """The engine records as this database does (one UPDATE … FROM unnest() on PostgreSQL) and as SQLite does (a
    statement per event), on PostgreSQL too."""
    if request.param == "as on SQLite":
        monkeypatch.setattr(connection, "vendor", "sqlite")


def cause_columns(event):
    return NotificationEvent.objects.filter(id=event.id).values_list("status", "cause", "cause_kind").get()


def test_the_engine_stores_the_cause_of_each_event_that_goes_dead_and_only_of_those(backend, make_event, settings):
    refused, exhausted, retrying, sent = (make_event() for _ in range(4))
    NotificationEvent.objects.filter(id=exhausted.id).update(retry_count=settings.CERTCTL_NOTIFICATION_MAX_ATTEMPTS - 1)
    deliveries = [
        (refused, DeliveryResult.permanent_failure(
            "Webhook receiver answered HTTP 410: gone (request req_a81kx0q2)", http_status=410
        )),
        (exhausted, DeliveryResult.transient("Webhook receiver answered HTTP 503: <h1>down</h1>", http_status=503)),
        (retrying, DeliveryResult.transient("Webhook receiver answered HTTP 503", http_status=503)),
        (sent, DeliveryResult.success(http_status=200)),
    ]

    recording.record_results([sender.Delivery(claim(e.id, now=T0), result, T0, 5, T0) for e, result in deliveries])

    assert cause_columns(refused) == ("dead", "Webhook receiver answered HTTP 410: gone (request <id>)", "permanent")
    assert cause_columns(exhausted) == ("dead", "Webhook receiver answered HTTP 503: down", "transient")
    assert cause_columns(retrying) == ("failed", None, None)
    assert cause_columns(sent) == ("sent", None, None)


def test_the_last_retry_stores_the_cause_of_its_own_error(backend, make_event, settings):
    event = make_event()
    now = T0
    for attempt in range(settings.CERTCTL_NOTIFICATION_MAX_ATTEMPTS):
        record(claim(event.id, now=now), DeliveryResult.transient(f"HTTP 50{attempt} at attempt {attempt}"), now)
        now = reload(event).next_retry_at or now
    assert cause_columns(event) == ("dead", "HTTP 504 at attempt <n>", "transient")


# --- a requeue clears it -----------------------------------------------------------


@pytest.fixture
def dead_ones(make_event):
    events = [make_event() for _ in range(3)]
    for event in events:
        record(claim(event.id, now=T0), DeliveryResult.permanent_failure("HTTP 410 gone"), T0)
    return events


@pytest.mark.parametrize("how", ["one", "by ids", "by filter", "as a group"])
def test_a_requeue_clears_the_cause(backend, dead_ones, how):
    later = T0 + 5 * MINUTE
    if how == "one":
        for event in dead_ones:
            requeue_event(event.id, OPERATOR, now=later)
    elif how == "by ids":
        requeue_events(OPERATOR, ids=[event.id for event in dead_ones], now=later)
    elif how == "by filter":
        requeue_events(OPERATOR, filters={"status": "dead"}, now=later)
    else:
        requeue_group(OPERATOR, "Webhook", "permanent", "HTTP 410 gone", now=later)

    assert {cause_columns(event) for event in dead_ones} == {("pending", None, None)}
    assert failure_groups() == []


# --- the database's rules ---------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "dead"},  # a dead event without a cause
        {"status": "dead", "cause": "HTTP 503"},  # … or without its kind
        {"status": "pending", "cause": "HTTP 503", "cause_kind": "transient"},  # a cause on an event that is not dead
        {"status": "dead", "cause": "HTTP 503", "cause_kind": "fatal"},  # an unknown kind
    ],
)
def test_the_database_keeps_a_cause_exactly_on_dead_events(make_event, changes):
    event = make_event()
    with pytest.raises(IntegrityError), transaction.atomic():
        NotificationEvent.objects.filter(id=event.id).update(**changes)


# --- migration 0009 -----------------------------------------------------------------

BEFORE = [("notifications", "0008_drop_event_id_like_indexes")]
AFTER = [("notifications", "0009_dead_letter_causes")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_stores_the_cause_of_every_dead_event_in_chunks(monkeypatch):
    migration = importlib.import_module("notifications.migrations.0009_dead_letter_causes")
    monkeypatch.setattr(migration, "CHUNK", 2)
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        Event = old.get_model("notifications", "NotificationEvent")
        Attempt = old.get_model("notifications", "NotificationAttempt")

        def event(event_id, status, error=None, created=T0, **fields):
            return Event.objects.create(
                id=event_id, type="ExpirationWarning", channel="Webhook", recipient="r", message="m", status=status,
                last_error=error, created_at=created, **fields,
            )

        refused = event("notif-refused", "dead", "HTTP 410 gone (req_a81kx0q2)", attempt_count=1)
        Attempt.objects.create(
            event=refused, number=1, started_at=T0, duration_ms=5, outcome="permanent_failure", resulting_status="dead"
        )
        exhausted = event("notif-exhausted", "dead", "HTTP 503 at 2026-11-29T08:00:00Z", T0 + MINUTE, attempt_count=2)
        for number, resulting_status in ((1, "failed"), (2, "dead")):
            Attempt.objects.create(
                event=exhausted, number=number, started_at=T0, duration_ms=5, outcome="transient_failure",
                resulting_status=resulting_status,
            )
        # A stale worker's attempt, recorded after the event died but not applied, does not decide the kind.
        Attempt.objects.create(event=refused, number=2, started_at=T0, duration_ms=5, outcome="transient_failure")
        # Three created at one moment: a chunk of two ends between them.
        event("notif-imported", "dead", "HTTP 500: " + "a-" * 25_000, T0 + 3 * MINUTE)
        event(
            "notif-read-unsent", "dead", READ_BEFORE_DELIVERY + ". Last error in certctl: webhook: 500",
            T0 + 3 * MINUTE, read_at=T0,
        )
        event("notif-no-error", "dead", None, T0 + 3 * MINUTE)
        event("notif-pending", "pending")
        event("notif-sent", "sent", sent_at=T0)

        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)

        causes = dict(NotificationEvent.objects.values_list("id", "cause_kind"))
        assert causes == {
            "notif-refused": "permanent", "notif-exhausted": "transient", "notif-imported": "transient",
            "notif-read-unsent": "permanent", "notif-no-error": "transient", "notif-pending": None, "notif-sent": None,
        }
        stored = dict(NotificationEvent.objects.values_list("id", "cause"))
        assert (stored["notif-refused"], stored["notif-exhausted"]) == ("HTTP 410 gone (<id>)", "HTTP 503 at <time>")
        assert stored["notif-imported"] == cause_of("HTTP 500: " + "a-" * 25_000)
        assert stored["notif-imported"].endswith("…")
        assert stored["notif-read-unsent"].startswith("acknowledged (marked read) in certctl before it was delivered")
        assert (stored["notif-no-error"], stored["notif-pending"]) == ("", None)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_groups_of_events_the_engine_made_dead_use_what_it_stored(make_event):
    event = make_event()
    record(claim(event.id, now=T0), DeliveryResult.permanent_failure("HTTP 410 gone"), T0)
    NotificationEvent.objects.filter(id=event.id).update(last_error="something else entirely")

    [group] = failure_groups()
    assert (group.error, group.kind, group.count, group.last_at) == ("HTTP 410 gone", "permanent", 1, T0)
    assert timedelta(0) == group.last_at - group.first_at
