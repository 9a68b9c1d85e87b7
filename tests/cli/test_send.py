"""`notifications send`: creates a pending event through operations.events.create_event."""
import pytest

from notifications.models import NotificationEvent
from tests.cli.conftest import cli, cli_error

SEND = ["send", "--type", "ExpirationWarning", "--channel", "Webhook", "--recipient", "ops@example.com"]


def test_send_creates_a_pending_event_with_every_field(db: None) -> None:
    run = cli(
        *SEND, "--message", "api.example.com expires in 7 days", "--certificate-id", "mc-api-prod",
        "--severity", "critical", "--dedup-key", "mc-api-prod-7d",
    )

    event = NotificationEvent.objects.get()
    assert f"created notification {event.id} (ExpirationWarning via Webhook to ops@example.com)" in run.out
    assert f"`manage.py notifications show {event.id}`" in run.out
    assert (event.status, event.retry_count, event.message) == ("pending", 0, "api.example.com expires in 7 days")
    assert (event.certificate_id, event.severity, event.dedup_key) == ("mc-api-prod", "critical", "mc-api-prod-7d")


def test_send_accepts_choices_in_any_letter_case(db: None) -> None:
    cli(
        "send", "--type", "renewalfailure", "--channel", "PAGERDUTY", "--recipient", "svc", "--message", "m",
        "--severity", "Warning",
    )

    event = NotificationEvent.objects.get()
    assert (event.type, event.channel, event.severity) == ("RenewalFailure", "PagerDuty", "warning")


def test_send_with_a_known_dedup_key_returns_the_existing_event(db: None) -> None:
    cli(*SEND, "--message", "first", "--dedup-key", "k-1")
    first = NotificationEvent.objects.get()

    run = cli(*SEND, "--message", "second", "--dedup-key", "k-1")

    already = f"notification {first.id} already exists with dedup key 'k-1' (status pending); nothing was created"
    assert already in run.out
    assert NotificationEvent.objects.get().message == "first"


def test_send_unknown_type_is_a_usage_error_listing_the_types(db: None) -> None:
    run = cli_error("send", "--type", "Expired", "--channel", "Webhook", "--recipient", "r", "--message", "m")

    assert run.returncode == 2
    assert (
        "argument --type: invalid choice: 'Expired' (choose from 'ExpirationWarning', 'RenewalSuccess'" in run.message
    )
    assert not NotificationEvent.objects.exists()


def test_send_without_required_options_is_a_usage_error(db: None) -> None:
    run = cli_error("send", "--channel", "Webhook")

    assert run.returncode == 2
    assert "the following arguments are required: --type, --recipient, --message" in run.message


@pytest.mark.parametrize(
    ("recipient", "message", "complaint"),
    [
        ("  ", "m", "--recipient must not be empty"),
        ("ops@example.com", " ", "--message must not be empty"),
        (
            "ops@example.com", "x" * 70_000,
            "--message is 70000 bytes; the limit is 65536 (CERTCTL_NOTIFICATION_MAX_MESSAGE_BYTES)",
        ),
    ],
)
def test_send_invalid_values_exit_2_naming_the_option(db: None, recipient: str, message: str, complaint: str) -> None:
    run = cli_error(
        "send", "--type", "Revocation", "--channel", "Email", "--recipient", recipient, "--message", message
    )

    assert run.returncode == 2
    assert run.message == f"invalid input: {complaint}; nothing was created"
    assert not NotificationEvent.objects.exists()
