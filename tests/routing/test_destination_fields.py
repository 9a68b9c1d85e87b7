"""The fields DESIGN §9 names beside the channels' settings: an Email destination's `recipients` (where an alert
that names no recipient goes) and an OpsGenie destination's `region` (which endpoint, unless a url is given)."""
import pytest

from notifications.engine import passes
from notifications.errors import Unprocessable
from notifications.models import NotificationEvent
from notifications.notifiers import build_destination_notifier, build_notifier, secret_fields
from notifications.operations.alerts import create_alert
from notifications.operations.destinations import create_destination, send_test, update_destination
from notifications.queries.destinations import get_destination, live_destination
from tests.notifiers.conftest import server_tls_context, smtp_server, test_ca  # noqa: F401 (fixtures)
from tests.routing.conftest import OPERATOR

ALERT = {"type": "ExpirationWarning", "message": "api.example.com expires in 7 days", "certificate_id": "mc-api"}
OPSGENIE_KEY = "0a1b2c3d-opsgenie-api-key-4e5f6a7b8c9d"


def email_destination(port, recipients):
    return create_destination(
        name="pki-mail", channel="Email", actor=OPERATOR,
        config={"host": "127.0.0.1", "port": port, "from_address": "certctl@example.com", "use_tls": False,
                "recipients": recipients},
    )


@pytest.mark.django_db
def test_an_alert_without_recipient_is_mailed_to_the_destinations_recipients(smtp_server, route):  # noqa: F811
    port, mailbox = smtp_server()
    email_destination(port, "pki@example.com, On Call <oncall@example.com>")
    route("mail", ["pki-mail"])

    create_alert(**ALERT, actor=OPERATOR)
    passes.process_pending()

    assert NotificationEvent.objects.get().status == "sent"
    [message] = mailbox.messages
    assert message["to"] == ["pki@example.com", "oncall@example.com"]
    assert "To: pki@example.com, On Call <oncall@example.com>" in message["data"]


@pytest.mark.django_db
def test_the_environment_email_destination_takes_its_recipients_from_the_settings(smtp_server, route, settings):  # noqa: F811
    port, mailbox = smtp_server()
    settings.CERTCTL_SMTP_HOST, settings.CERTCTL_SMTP_PORT, settings.CERTCTL_SMTP_USE_TLS = "127.0.0.1", port, False
    settings.CERTCTL_SMTP_FROM_ADDRESS = "certctl@example.com"
    settings.CERTCTL_SMTP_RECIPIENTS = "ops@example.com"
    route("mail", ["Email"])

    create_alert(**ALERT, actor=OPERATOR)
    passes.process_pending()

    assert [message["to"] for message in mailbox.messages] == [["ops@example.com"]]
    assert get_destination("Email")["config"]["recipients"] == "ops@example.com"


@pytest.mark.django_db
def test_recipients_are_shown_never_sealed_and_each_must_be_an_address(destinations):
    assert "recipients" not in secret_fields("Email")
    email_destination(25, "pki@example.com")
    row = get_destination("pki-mail")
    assert (row["config"]["recipients"], row["secrets_set"]) == ("pki@example.com", [])

    with pytest.raises(Unprocessable) as refused:
        update_destination("pki-mail", config={"recipients": "pki@example.com, not an address"}, actor=OPERATOR)
    assert refused.value.errors == {
        "config.recipients": "'not an address' is not an e-mail address; give addresses separated by commas"
    }
    with pytest.raises(Unprocessable) as refused:
        update_destination(
            "pki-mail", config={"recipients": "a@example.com\r\nBcc: victim@example.com"}, actor=OPERATOR
        )
    assert "config.recipients" in refused.value.errors
    with pytest.raises(Unprocessable, match="at most 1024"):
        update_destination("pki-mail", config={"recipients": ", ".join(["a@example.com"] * 100)}, actor=OPERATOR)


@pytest.mark.django_db
def test_opsgenie_region_chooses_the_endpoint_unless_a_url_is_given(destinations, settings):
    create_destination(name="og-eu", channel="OpsGenie", config={"api_key": OPSGENIE_KEY, "region": "eu"},
                       actor=OPERATOR)
    assert build_destination_notifier(live_destination("og-eu")).url == "https://api.eu.opsgenie.com/v2/alerts"
    assert get_destination("og-eu")["config"] == {"region": "eu"}

    settings.CERTCTL_OPSGENIE_API_KEY = OPSGENIE_KEY
    assert build_notifier("OpsGenie").url == "https://api.opsgenie.com/v2/alerts"  # us by default
    settings.CERTCTL_OPSGENIE_REGION = "eu"
    assert build_notifier("OpsGenie").url == "https://api.eu.opsgenie.com/v2/alerts"
    settings.CERTCTL_OPSGENIE_URL = "https://opsgenie-proxy.example.com/v2/alerts"
    assert build_notifier("OpsGenie").url == "https://opsgenie-proxy.example.com/v2/alerts"

    with pytest.raises(Unprocessable) as refused:
        update_destination("og-eu", config={"region": "asia"}, actor=OPERATOR)
    assert refused.value.errors == {"config.region": "must be one of us, eu"}


@pytest.mark.django_db
def test_an_opsgenie_destination_with_a_region_and_a_url_delivers_to_the_url(receiver, route):
    create_destination(
        name="og-eu", channel="OpsGenie", actor=OPERATOR,
        config={"api_key": OPSGENIE_KEY, "region": "eu", "url": receiver.url + "/v2/alerts"},
    )
    route("pages", ["og-eu"])

    create_alert(**ALERT, actor=OPERATOR)
    passes.process_pending()

    assert NotificationEvent.objects.get().status == "sent"
    [request] = receiver.requests
    assert (request.path, request.headers["Authorization"]) == ("/v2/alerts", f"GenieKey {OPSGENIE_KEY}")
    assert request.json()["details"]["recipient"] == "og-eu"


@pytest.mark.django_db
def test_a_test_send_of_an_email_destination_goes_to_its_recipients(smtp_server, destinations):  # noqa: F811
    port, mailbox = smtp_server()
    email_destination(port, "pki@example.com")
    assert send_test("pki-mail", actor=OPERATOR).outcome == "ok"
    assert [message["to"] for message in mailbox.messages] == [["pki@example.com"]]
