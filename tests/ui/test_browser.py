"""The operator's path through the UI in a real browser: Debian's chromium driven by Playwright against a live server.

Select with `-m browser`. Without /usr/bin/chromium they skip with a reason, except in CI (CI=true) where they fail.
"""
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from notifications.models import NotificationEvent
from notifications.notifiers import DeliveryResult
from tests.deliveries import destination_state, state_of
from tests.ui.conftest import PASSWORD, record

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
SCREENSHOTS = Path(django_settings.BASE_DIR) / "docs" / "screenshots"
DEAD_ERROR = (
    "HTTP 503 from https://hooks.example.com/certctl: Service Unavailable (receiver in maintenance until 03:30 UTC)"
)


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {CHROMIUM} is missing: .ci/run installs Debian's chromium package")
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread while the tests (and pytest-django's flushes)
    # make ordinary synchronous ORM calls in it.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()


@pytest.fixture
def page(browser, live_server, operator):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US", timezone_id="UTC")
    page = context.new_page()
    page.set_default_timeout(10_000)
    # Every page must work under the Content-Security-Policy: chromium reports what it refuses on the console.
    refused = []
    page.on("console", lambda message: "Content Security Policy" in message.text and refused.append(message.text))
    page.goto(live_server.url + "/")
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Dashboard").wait_for()
    yield page
    context.close()
    assert refused == []


def status_of(event):
    return NotificationEvent.objects.get(id=event.id).status


def dead_row(page, event):
    return page.locator(f'tr[data-event-id="{event.id}"]')


def seed_history(event_in):
    """A day of mixed outcomes, so the dashboard chart and channel table have something to show."""
    now = timezone.now()
    for hours_ago in range(1, 23, 2):
        for channel in ("Webhook", "Slack", "Email"):
            event = event_in("pending", channel=channel, certificate_id=f"cert-{hours_ago:02d}")
            when = now - timedelta(hours=hours_ago, minutes=10)
            if hours_ago % 6 == 1 and channel != "Email":
                event = record(
                    event.id, DeliveryResult.transient("HTTP 502 from receiver: Bad Gateway", http_status=502), when
                )
                when = event.next_retry_at
            record(event.id, DeliveryResult.success(http_status=200), when)


def test_dashboard_dead_card_leads_to_the_dead_letter_tab(page, live_server, event_in):
    seed_history(event_in)
    dead = event_in("dead", certificate_id="cert-api-prod", error=DEAD_ERROR)
    event_in("failed", channel="Slack", certificate_id="cert-shop")
    page.reload()
    dead_card = page.get_by_test_id("card-dead")
    assert dead_card.get_attribute("class") == "card card-dead card-alert"
    assert dead_card.locator(".card-count").inner_text() == "1"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

    dead_card.click()
    page.wait_for_url(re.compile(r"/notifications/\?tab=dead$"))
    assert page.get_by_role("tab", name="Dead letter").get_attribute("aria-selected") == "true"
    assert page.get_by_role("tab", name="All").get_attribute("aria-selected") == "false"

    # A phone's width: no sideways scrolling of the page itself.
    page.set_viewport_size({"width": 390, "height": 800})
    for path in ("/", "/notifications/?tab=dead", f"/notifications/{dead.id}/", "/destinations/", "/routes/"):
        page.goto(live_server.url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_requeue_one_dead_event_from_the_tab(page, live_server, event_in):
    dead = event_in("dead", certificate_id="cert-api-prod", error=DEAD_ERROR)
    other = event_in(
        "dead", channel="PagerDuty", certificate_id="cert-vpn",
        error="PagerDuty channel is not configured: set CERTCTL_PAGERDUTY_ROUTING_KEY",
    )
    event_in("sent")
    page.get_by_role("link", name="Notifications", exact=True).click()
    page.get_by_role("tab", name="Dead letter").click()
    page.wait_for_url(re.compile(r"tab=dead"))
    row = dead_row(page, dead)
    assert "Retry 5/5" in row.inner_text()
    error = row.locator(".error-text")
    assert error.get_attribute("title") == DEAD_ERROR
    assert error.inner_text().endswith("…")
    page.screenshot(path=str(SCREENSHOTS / "dead-letter.png"), full_page=True)

    row.get_by_role("button", name="Requeue").click()
    page.get_by_text(f"Requeued {dead.id}").wait_for()
    assert re.search(r"/notifications/\?tab=dead$", page.url)
    assert dead_row(page, dead).count() == 0
    assert dead_row(page, other).count() == 1
    assert status_of(dead) == "pending"

    page.reload()
    assert page.get_by_role("tab", name="Dead letter").get_attribute("aria-selected") == "true"
    assert dead_row(page, other).count() == 1
    page.go_back()
    assert page.get_by_role("tab", name="Dead letter").get_attribute("aria-selected") == "true"


def test_requeue_from_the_detail_page(page, live_server, event_in):
    dead = event_in("dead", certificate_id="cert-api-prod", error=DEAD_ERROR)
    page.goto(f"{live_server.url}/notifications/{dead.id}/")
    page.get_by_role("heading", name="Why it was dead-lettered").wait_for()

    page.get_by_role("button", name="Requeue", exact=True).click()

    page.get_by_text(f"Requeued {dead.id}").wait_for()
    assert page.url == f"{live_server.url}/notifications/{dead.id}/"
    assert page.locator(".lead .badge").all_inner_texts() == ["pending", "unread"]
    assert page.get_by_role("button", name="Requeue", exact=True).count() == 0
    assert status_of(dead) == "pending"


def test_bulk_requeue_two_rows(page, live_server, event_in):
    first, second, third = (event_in("dead", certificate_id=f"cert-{n}") for n in (1, 2, 3))
    page.goto(live_server.url + "/notifications/?tab=dead")
    dead_row(page, first).get_by_role("checkbox").check()
    dead_row(page, third).get_by_role("checkbox").check()
    page.get_by_role("button", name="Requeue selected").click()
    page.get_by_text("2 requeued, 0 skipped (not failed or dead).").wait_for()
    assert page.get_by_role("tab", name="Dead letter").get_attribute("aria-selected") == "true"
    assert [status_of(e) for e in (first, second, third)] == ["pending", "dead", "pending"]
    assert page.locator("tr[data-event-id]").count() == 1

    page.get_by_role("link", name="Requeue all matching (1)").click()
    page.get_by_text("Requeue 1 dead notification?").wait_for()
    page.get_by_role("button", name="Requeue 1 notification").click()
    page.get_by_text("1 requeued, 0 skipped (not failed or dead).").wait_for()
    assert status_of(second) == "pending"
    assert page.get_by_text("The dead-letter queue is empty.").is_visible()


def test_auto_refresh_keeps_the_selection_in_progress(page, live_server, event_in):
    first = event_in("dead", certificate_id="cert-1")
    page.clock.install()
    page.goto(live_server.url + "/notifications/?tab=dead&channel=Webhook")
    late = event_in("dead", certificate_id="cert-late")
    page.clock.run_for("00:31")
    dead_row(page, late).wait_for()
    assert re.search(r"tab=dead&channel=Webhook$", page.url)

    fragment_requests = []
    page.on("request", lambda request: "fragment=1" in request.url and fragment_requests.append(request.url))
    dead_row(page, first).get_by_role("checkbox").check()
    later = event_in("dead", certificate_id="cert-later")
    page.clock.run_for("01:01")
    page.evaluate("0")  # one round trip, so a refresh the timers started would have been reported
    assert fragment_requests == []  # not refreshed while a selection is in progress
    assert dead_row(page, later).count() == 0
    assert dead_row(page, first).get_by_role("checkbox").is_checked()

    dead_row(page, first).get_by_role("checkbox").uncheck()
    page.evaluate("document.activeElement.blur()")  # the operator moves on: focus leaves the table
    page.clock.run_for("00:31")
    dead_row(page, later).wait_for()


def test_a_viewer_dismisses_a_dead_row_and_show_dismissed_brings_it_back(browser, live_server, viewer, event_in):
    kept, dismissed = event_in("dead", error=DEAD_ERROR), event_in("dead", error=DEAD_ERROR)
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US", timezone_id="UTC")
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        page.goto(live_server.url + "/notifications/?tab=dead")
        page.get_by_label("Username").fill("viewer")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        assert page.get_by_role("button", name="Requeue selected").count() == 0  # a viewer may not requeue
        dead_row(page, dismissed).get_by_role("button", name=f"Dismiss {dismissed.id}").click()
        page.get_by_text(f"Dismissed {dismissed.id}: it left the Dead letter tab").wait_for()
        assert dead_row(page, dismissed).count() == 0
        assert dead_row(page, kept).count() == 1
        assert NotificationEvent.objects.get(id=dismissed.id).read_at is not None
        page.get_by_label("Show dismissed").check()
        page.get_by_role("button", name="Apply filters").click()
        dead_row(page, dismissed).get_by_text("dismissed", exact=True).wait_for()
        assert status_of(dismissed) == "dead"
    finally:
        context.close()


def test_every_page_works_under_the_content_security_policy(page, live_server, event_in):
    event = event_in("dead")
    for path in (
        "/", "/notifications/", "/notifications/?tab=dead", f"/notifications/{event.id}/", "/admin/",
        "/destinations/", "/destinations/new/?channel=Email", "/routes/", "/routes/new/",
    ):
        response = page.goto(live_server.url + path)
        assert response.status == 200
        assert "script-src 'self'" in response.headers["content-security-policy"]
    page.goto(live_server.url + "/api/v1/docs")
    page.get_by_text("/api/v1/notifications/requeue").first.wait_for()


def test_the_dashboard_shows_an_open_breaker_and_an_operator_pauses_and_resumes_a_channel(page, live_server):

    now = timezone.now()
    destination_state(
        "Slack", consecutive_failures=6, failing_events=["a", "b", "c"], opened_at=now - timedelta(minutes=3),
        next_probe_at=now + timedelta(seconds=40),
    )
    page.reload()
    slack = page.locator("tr", has=page.get_by_role("rowheader", name="Slack"))
    assert slack.get_by_text("breaker open").is_visible()
    assert "next probe" in slack.inner_text()

    webhook = page.locator("tr", has=page.get_by_role("rowheader", name="Webhook"))
    webhook.get_by_role("button", name="Pause Webhook").click()
    page.get_by_text("Paused Webhook: its notifications wait").wait_for()
    webhook = page.locator("tr", has=page.get_by_role("rowheader", name="Webhook"))
    assert "by operator" in webhook.inner_text()
    assert state_of("Webhook").state == "paused"

    webhook.get_by_role("button", name="Resume Webhook").click()
    page.get_by_text("Resumed Webhook").wait_for()
    assert state_of("Webhook").state == "closed"


def test_group_by_cause_then_requeue_one_group_and_dismiss_another(page, live_server, event_in):
    timeouts = [
        event_in("dead", channel="Slack", error=f"Slack webhook: no answer for request req_{n}x8k2f93 after {n}s")
        for n in (3, 4, 5)
    ]
    refused = event_in("dead", channel="Webhook", error="Webhook receiver answered HTTP 410: endpoint 7c1f9e2ab3 gone")
    page.goto(live_server.url + "/notifications/?tab=dead")
    page.get_by_role("link", name="Group by cause").click()

    slack = page.locator('tr[data-group-channel="Slack"]')
    assert slack.locator(".group-count").inner_text() == "3"
    assert "no answer for request <id> after <n>s" in slack.inner_text()
    slack.get_by_role("button", name=re.compile("^Requeue group")).click()

    page.get_by_text("3 requeued, 0 skipped").wait_for()
    assert {status_of(event) for event in timeouts} == {"pending"}
    assert "view=groups" in page.url  # back on the grouped view
    assert page.locator('tr[data-group-channel="Slack"]').count() == 0

    page.locator('tr[data-group-channel="Webhook"]').get_by_role("button", name=re.compile("^Dismiss group")).click()
    page.get_by_text("1 dismissed").wait_for()
    refused = NotificationEvent.objects.get(id=refused.id)
    assert refused.status == "dead"
    assert refused.read_at is not None
    page.get_by_text("no causes to group").wait_for()


def test_download_csv_exports_every_matching_row(page, live_server, event_in):
    dead = [event_in("dead", channel="Slack", certificate_id=f"cert-{n}") for n in range(3)]
    event_in("dead", channel="Webhook")
    event_in("sent", channel="Slack")
    page.goto(live_server.url + "/notifications/?tab=dead&channel=Slack")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    download = download_info.value
    assert download.suggested_filename.startswith("dead-letter-")
    assert download.suggested_filename.endswith(".csv")
    lines = Path(download.path()).read_text().splitlines()
    assert lines[0].startswith("id,type,certificate_id,channel")
    assert sorted(line.split(",")[0] for line in lines[1:]) == sorted(event.id for event in dead)


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
def test_row_actions_stay_within_the_window(browser, live_server, operator, event_in, width, height):
    long_text = "certificate api.example.com on the load balancer pool eu-west-1 " * 4
    for n in range(3):
        event_in("dead", certificate_id=f"cert-long-identifier-{n}", message=long_text,
                 recipient="platform-oncall-distribution-list@example.com", error=DEAD_ERROR + " " + long_text)
    context = browser.new_context(viewport={"width": width, "height": height}, locale="en-US", timezone_id="UTC")
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        page.goto(live_server.url + "/notifications/?tab=dead")
        page.get_by_label("Username").fill("operator")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        row = page.locator("tbody tr").first
        for name in ("Requeue", "Dismiss"):
            button = row.get_by_role("button", name=re.compile(f"^{name} notif-"))
            box = button.bounding_box()
            assert box is not None
            assert box["width"] > 0
            assert 0 <= box["x"] <= width - box["width"], f"{name} at {box} is cut off at {width}px"
        # The page itself never scrolls sideways: only the table may.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        context.close()


def test_an_operator_adds_a_webhook_destination_whose_secret_is_never_shown(page, live_server, receiver):
    signing_secret = "whsec_" + "YnJvd3Nlci10ZXN0LXNpZ25pbmcta2V5LTAx"
    page.get_by_role("link", name="Destinations", exact=True).click()
    page.get_by_role("link", name="Add a destination").click()
    page.get_by_label("Channel").select_option("Webhook")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Name").fill("payments")
    page.get_by_label("Description").fill("Payments team's receiver")
    page.get_by_label("Url (required)").fill(receiver.url + "/payments")
    page.get_by_label("Secret", exact=True).fill(signing_secret)
    page.get_by_role("button", name="Add destination").click()

    page.get_by_text("Added destination payments (Webhook).").wait_for()
    row = page.locator('tr[data-destination="payments"]')
    assert "configured" in row.inner_text()
    assert "secrets set: url, secret" in row.inner_text()
    assert signing_secret not in page.content()
    assert receiver.url not in page.content()
    page.screenshot(path=str(SCREENSHOTS / "destinations.png"), full_page=True)

    row.get_by_role("button", name="Send test to payments").click()
    page.get_by_text(re.compile(r"Test of payments: ok, HTTP 200, \d+ ms")).wait_for()
    assert [request.path for request in receiver.requests] == ["/payments"]

    page.locator('tr[data-destination="payments"]').get_by_role("link", name="Edit payments").click()
    assert page.get_by_label("Secret", exact=True).input_value() == ""
    page.get_by_text("set — leave blank to keep it").first.wait_for()
    assert signing_secret not in page.content()


def test_an_operator_creates_a_route_and_tries_an_alert(page, live_server):
    from notifications.models import Destination

    Destination.objects.ensure_environment()
    for name in ("payments-slack", "edge-oncall"):
        Destination.objects.create(name=name, channel="Webhook", config={"url": f"http://127.0.0.1:9/{name}"})
    page.get_by_role("link", name="Routes", exact=True).click()
    page.get_by_role("link", name="Add a route").click()
    page.get_by_label("Name").fill("payments revocations")
    page.get_by_label("Revocation").check()
    page.get_by_label("Labels").fill("team=payments")
    page.get_by_label("Destinations").select_option(["payments-slack"])
    page.get_by_role("button", name="Add route").click()
    page.get_by_text("Added route payments revocations").wait_for()
    row = page.locator('tr[data-route="payments revocations"]')
    assert "type Revocation" in row.inner_text()
    assert "label team=payments" in row.inner_text()

    page.get_by_label("Type").select_option("Revocation")
    page.get_by_label("Labels").fill("team=payments\nenv=prod")
    page.get_by_role("button", name="Try", exact=True).click()
    result = page.locator("#try-result")
    result.get_by_text("It would go to").wait_for()
    assert "payments-slack" in result.inner_text()
    assert "edge-oncall" not in result.inner_text()
    assert "Matched: payments revocations" in result.inner_text()
    page.screenshot(path=str(SCREENSHOTS / "routes.png"), full_page=True)

    page.get_by_label("Labels").fill("team=edge")
    page.get_by_role("button", name="Try", exact=True).click()
    page.locator("#try-result").get_by_text("no route matched and there is no default route").wait_for()
    assert NotificationEvent.objects.count() == 0
