"""/metrics: the series, their values when deliveries run in another process, access, and a database outage."""
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import time_machine
from django.db import OperationalError, connection
from django.db.models import Sum
from prometheus_client.parser import text_string_to_metric_families

from notifications.actors import Actor
from notifications.engine import claims, passes
from notifications.models import DeliveryTotal, NotificationEvent
from notifications.operations.events import create_event, mark_read, mark_read_events, requeue_events
from tests.deliveries import deliver_now, destination_state
from tests.receivers import Reply

PROJECT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
REMOTE = "203.0.113.7"
DELIVERIES = "certctl_notification_deliveries_total"
# The delivery series' labels of the Webhook channel's environment destination.
WEBHOOK = {"channel": "Webhook", "destination": "Webhook"}

# Renaming any of these breaks someone's dashboards and alerts: change this list only on purpose.
EXPECTED_FAMILIES = {
    "certctl_notifications": ("gauge", {"status", "channel"}),
    "certctl_notification_dead_total": ("gauge", set()),
    "certctl_notification_dead_unacknowledged": ("gauge", set()),
    "certctl_notification_oldest_due_retry_age_seconds": ("gauge", set()),
    "certctl_notification_leases_held": ("gauge", set()),
    "certctl_notification_deliveries": ("counter", {"channel", "destination", "outcome"}),
    "certctl_notification_delivery_duration_seconds": ("histogram", {"channel", "destination", "le"}),
    "certctl_notification_last_pass_duration_seconds": ("gauge", {"pass"}),
    "certctl_notification_last_pass_rows": ("gauge", {"pass"}),
    "certctl_notification_last_pass_timestamp_seconds": ("gauge", {"pass"}),
    "certctl_notification_db_up": ("gauge", set()),
    "certctl_notification_channel_state": ("gauge", {"channel", "destination", "state"}),
}
EXPECTED_SAMPLE_NAMES = {
    "certctl_notifications", "certctl_notification_dead_total", "certctl_notification_dead_unacknowledged",
    "certctl_notification_oldest_due_retry_age_seconds",
    "certctl_notification_leases_held", "certctl_notification_deliveries_total",
    "certctl_notification_delivery_duration_seconds_bucket", "certctl_notification_delivery_duration_seconds_count",
    "certctl_notification_delivery_duration_seconds_sum", "certctl_notification_last_pass_duration_seconds",
    "certctl_notification_last_pass_rows", "certctl_notification_last_pass_timestamp_seconds",
    "certctl_notification_db_up", "certctl_notification_channel_state",
}


def scrape(client, **request):
    response = client.get("/metrics", **request)
    assert response.status_code == 200, response.content
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


def sample(families, name, **labels):
    for family in families.values():
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    raise AssertionError(f"no sample {name}{labels} in the scrape")


def _webhook_events(count):
    return [
        create_event(type="ExpirationWarning", channel="Webhook", recipient="ops@example.com", message=f"cert {n}")[0]
        for n in range(count)
    ]


@pytest.fixture
def no_dispatch(monkeypatch):
    """Events wait for an explicit pass instead of going to the task cluster on commit."""
    monkeypatch.setattr("notifications.engine.dispatch.enqueue", lambda *args: True)


@pytest.mark.django_db
def test_metric_names_types_and_labels_are_the_documented_ones(client, webhook, no_dispatch):
    _webhook_events(1)
    passes.process_pending()
    passes.retry_sweep()
    families = scrape(client)

    ours = {
        name: (family.type, {label for s in family.samples for label in s.labels})
        for name, family in families.items() if name.startswith("certctl_")
    }
    assert ours == EXPECTED_FAMILIES
    assert {s.name for name in ours for s in families[name].samples} == EXPECTED_SAMPLE_NAMES
    # django-prometheus' request and database series are served alongside.
    assert any(name.startswith("django_http_requests") for name in families)
    assert any(name.startswith("django_db_") for name in families)


@pytest.mark.django_db
def test_counts_gauges_and_pass_figures_follow_the_deliveries(client, webhook, no_dispatch):
    webhook.reply_with(Reply(200), Reply(200), Reply(500), Reply(404))
    with time_machine.travel(T0, tick=False):
        _webhook_events(4)
        report = passes.process_pending()
    assert report.claimed == 4

    with time_machine.travel(T0 + timedelta(minutes=16), tick=False):
        families = scrape(client)
    assert sample(families, "certctl_notifications", status="sent", channel="Webhook") == 2
    assert sample(families, "certctl_notifications", status="failed", channel="Webhook") == 1
    assert sample(families, "certctl_notifications", status="dead", channel="Webhook") == 1
    assert sample(families, "certctl_notifications", status="dead", channel="Email") == 0
    assert sample(families, "certctl_notification_dead_total") == 1
    # The failed event was due one minute after T0 (backoff base) and has waited 15 minutes since.
    assert sample(families, "certctl_notification_oldest_due_retry_age_seconds") == 15 * 60
    assert sample(families, DELIVERIES, **WEBHOOK, outcome="success") == 2
    assert sample(families, DELIVERIES, **WEBHOOK, outcome="transient_failure") == 1
    assert sample(families, DELIVERIES, **WEBHOOK, outcome="permanent_failure") == 1
    assert sample(families, DELIVERIES, **WEBHOOK, outcome="dead_lettered") == 1
    assert sample(families, "certctl_notification_delivery_duration_seconds_count", **WEBHOOK) == 4
    assert sample(families, "certctl_notification_delivery_duration_seconds_bucket", **WEBHOOK, le="+Inf") == 4
    assert sample(families, "certctl_notification_last_pass_rows", **{"pass": "pending"}) == 4
    assert sample(families, "certctl_notification_last_pass_timestamp_seconds", **{"pass": "pending"}) == T0.timestamp()


@pytest.mark.django_db
def test_dead_letter_depth_is_a_gauge_that_falls_on_requeue(client, no_dispatch):
    """DESIGN §8 fault 10: certctl exported this as a counter, which can never go down."""
    for event in _webhook_events(2):  # no Webhook URL configured: dead at the first attempt
        deliver_now(event.id)
    families = scrape(client)
    assert families["certctl_notification_dead_total"].type == "gauge"
    assert sample(families, "certctl_notification_dead_total") == 2

    requeue_events(Actor("oncall", "api"), filters={"status": "dead"})
    families = scrape(client)
    assert sample(families, "certctl_notification_dead_total") == 0
    # The history is not rewritten: two attempts did dead-letter an event.
    assert sample(families, DELIVERIES, **WEBHOOK, outcome="dead_lettered") == 2


@pytest.mark.django_db
def test_dismissing_a_dead_event_lowers_the_unacknowledged_gauge_only(client, no_dispatch):
    dead = _webhook_events(3)
    for event in dead:
        deliver_now(event.id)
    assert sample(scrape(client), "certctl_notification_dead_unacknowledged") == 3
    mark_read(dead[0].id, Actor("oncall", "api"))
    mark_read_events(Actor("oncall", "api"), ids=[dead[1].id])
    families = scrape(client)
    assert families["certctl_notification_dead_unacknowledged"].type == "gauge"
    assert sample(families, "certctl_notification_dead_unacknowledged") == 1
    assert sample(families, "certctl_notification_dead_total") == 3


@pytest.mark.django_db
def test_counters_stay_exact_when_old_attempts_are_folded_into_totals(client, webhook, no_dispatch):
    """Scrapes read old attempts from running totals and only recent ones row by row; the sum must not change."""
    webhook.reply_with(Reply(200), Reply(500), Reply(200))
    with time_machine.travel(T0, tick=False):
        _webhook_events(2)
        passes.process_pending()
        before = scrape(client)
    with time_machine.travel(T0 + timedelta(hours=3), tick=False):
        passes.retry_sweep()  # the failed event is long due; this pass also folds the attempts made at T0
        assert DeliveryTotal.objects.aggregate(n=Sum("attempts"))["n"] == 2
        after = scrape(client)
    assert sample(before, DELIVERIES, **WEBHOOK, outcome="success") == 1
    assert sample(after, DELIVERIES, **WEBHOOK, outcome="success") == 2
    assert sample(after, DELIVERIES, **WEBHOOK, outcome="transient_failure") == 1
    assert sample(after, "certctl_notification_delivery_duration_seconds_count", **WEBHOOK) == 3
    assert sample(after, "certctl_notification_delivery_duration_seconds_sum", **WEBHOOK) >= sample(
        before, "certctl_notification_delivery_duration_seconds_sum", **WEBHOOK
    )


@pytest.mark.django_db
def test_leases_held_counts_claims_until_they_expire(client, no_dispatch):
    with time_machine.travel(T0, tick=False):
        _webhook_events(3)
        claims.claim_due_events("pending")
        assert sample(scrape(client), "certctl_notification_leases_held") == 3
        retry = _webhook_events(1)[0]
        NotificationEvent.objects.filter(id=retry.id).update(
            status="failed", retry_count=1, next_retry_at=T0 - timedelta(minutes=1), last_error="HTTP 500"
        )
        assert len(claims.claim_due_events("retry")) == 1
        assert sample(scrape(client), "certctl_notification_leases_held") == 4
    with time_machine.travel(T0 + timedelta(minutes=6), tick=False):  # past the 5-minute lease
        assert sample(scrape(client), "certctl_notification_leases_held") == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_deliveries_by_a_worker_process_show_on_the_web_process_scrape(client, receiver, no_dispatch):
    """The sweep runs in a separate process, as a qcluster worker on another host would; the scrape here sees it."""
    receiver.reply_with(Reply(200), Reply(200), Reply(200), Reply(500), Reply(500), Reply(404))
    _webhook_events(6)
    database = connection.settings_dict
    login = quote(database["USER"]) + (f":{quote(database['PASSWORD'])}" if database["PASSWORD"] else "")
    worker_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "certctl.settings",
        "SECRET_KEY": "worker-process-test-key",
        "DATABASE_URL": f"postgres://{login}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "CERTCTL_WEBHOOK_URL": receiver.url + "/hook",
    }
    worker = subprocess.run(
        [sys.executable, "manage.py", "notifications", "sweep"],
        cwd=PROJECT, env=worker_env, capture_output=True, text=True, timeout=60,
    )
    assert worker.returncode == 0, worker.stderr
    assert len(receiver.requests) == 6

    families = scrape(client)
    assert sample(families, DELIVERIES, **WEBHOOK, outcome="success") == 3
    assert sample(families, DELIVERIES, **WEBHOOK, outcome="transient_failure") == 2
    assert sample(families, DELIVERIES, **WEBHOOK, outcome="permanent_failure") == 1
    assert sample(families, DELIVERIES, **WEBHOOK, outcome="dead_lettered") == 1
    assert sample(families, "certctl_notification_delivery_duration_seconds_count", **WEBHOOK) == 6
    assert sample(families, "certctl_notifications", status="sent", channel="Webhook") == 3
    assert sample(families, "certctl_notifications", status="failed", channel="Webhook") == 2
    assert sample(families, "certctl_notification_dead_total") == 1
    assert sample(families, "certctl_notification_leases_held") == 0
    assert sample(families, "certctl_notification_last_pass_rows", **{"pass": "pending"}) == 6


@pytest.mark.django_db
def test_a_database_outage_leaves_the_scrape_up_with_db_up_zero(client):
    def database_down(execute, sql, params, many, context):
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")

    with connection.execute_wrapper(database_down):
        families = scrape(client)
    assert sample(families, "certctl_notification_db_up") == 0
    assert "certctl_notifications" not in families
    assert "certctl_notification_deliveries" not in families
    assert any(name.startswith("django_http_requests") for name in families)

    assert sample(scrape(client), "certctl_notification_db_up") == 1


# --- access -------------------------------------------------------------------


@pytest.fixture
def metrics_token(settings):
    settings.CERTCTL_METRICS_TOKEN = "scrape-token-5d1e0c7b9a"
    return settings.CERTCTL_METRICS_TOKEN


@pytest.mark.django_db
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_loopback_clients_may_scrape_without_a_token(client, address):
    assert client.get("/metrics", REMOTE_ADDR=address).status_code == 200


@pytest.mark.django_db
def test_a_remote_client_without_a_token_is_told_how_to_get_access(client, metrics_token):
    response = client.get("/metrics", REMOTE_ADDR=REMOTE)
    assert response.status_code == 403
    text = response.content.decode()
    assert "CERTCTL_METRICS_TOKEN" in text
    assert "Authorization: Bearer" in text
    assert "CERTCTL_METRICS_PUBLIC=true" in text
    assert "certctl_notifications" not in text


@pytest.mark.django_db
def test_a_remote_client_with_the_token_may_scrape(client, metrics_token):
    response = client.get("/metrics", REMOTE_ADDR=REMOTE, HTTP_AUTHORIZATION=f"Bearer {metrics_token}")
    assert response.status_code == 200
    assert b"certctl_notification_dead_total" in response.content


@pytest.mark.django_db
def test_a_wrong_token_is_refused_and_says_so(client, metrics_token):
    response = client.get("/metrics", REMOTE_ADDR=REMOTE, HTTP_AUTHORIZATION="Bearer scrape-token-guess")
    assert response.status_code == 403
    assert "does not match CERTCTL_METRICS_TOKEN" in response.content.decode()


@pytest.mark.django_db
def test_a_token_is_refused_when_none_is_configured(client):
    response = client.get("/metrics", REMOTE_ADDR=REMOTE, HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 403
    assert "CERTCTL_METRICS_TOKEN is not set" in response.content.decode()


@pytest.mark.django_db
def test_a_request_forwarded_by_a_local_proxy_is_not_local(client):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=REMOTE)
    assert response.status_code == 403


@pytest.mark.django_db
def test_the_public_setting_opens_metrics_to_everyone(client, settings):
    settings.CERTCTL_METRICS_PUBLIC = True
    assert client.get("/metrics", REMOTE_ADDR=REMOTE).status_code == 200


@pytest.mark.django_db
def test_each_channel_reports_its_one_current_state(client):
    from django.utils import timezone

    now = timezone.now()
    destination_state("Webhook", consecutive_failures=5, opened_at=now, next_probe_at=now)
    destination_state("Slack", paused_at=now, paused_by="alice")
    families = scrape(client)
    for channel, current in (("Webhook", "open"), ("Slack", "paused"), ("Email", "closed")):
        for state in ("closed", "open", "paused"):
            in_state = sample(
                families, "certctl_notification_channel_state", channel=channel, destination=channel, state=state
            )
            assert in_state == (state == current)
