"""The Email channel against a real local SMTP server (aiosmtpd): plain, STARTTLS, implicit TLS, AUTH, refusals."""
import email
from email import policy

import pytest

from notifications.notifiers import build_notifier
from notifications.notifiers.email import EmailNotifier
from tests.bounded import finishes_within
from tests.notifiers.conftest import SMTP_PASSWORD, SMTP_USER, make_event

FROM = "certctl@example.com"
# The configured timeouts (fast_timeouts) add up to 0.5 s; a send still running after this has lost them.
TIMEOUT_BOUND_S = 5


def configure_email(settings, port, use_tls=False, username="", password=""):
    settings.CERTCTL_SMTP_HOST = "127.0.0.1"
    settings.CERTCTL_SMTP_PORT = port
    settings.CERTCTL_SMTP_FROM_ADDRESS = FROM
    settings.CERTCTL_SMTP_USE_TLS = use_tls
    settings.CERTCTL_SMTP_USERNAME = username
    settings.CERTCTL_SMTP_PASSWORD = password


def email_event(**fields):
    return make_event(channel="Email", **fields)


def parsed(recorded):
    return email.message_from_string(recorded["data"], policy=policy.default)


def test_plain_smtp_delivers_the_message(settings, smtp_server):
    port, mailbox = smtp_server()
    configure_email(settings, port, use_tls=False)
    event = email_event(recipient="ops@example.com")

    result = build_notifier("Email").send_smtp(event)

    assert result.ok
    [recorded] = mailbox.messages
    assert recorded["from"] == FROM
    assert recorded["to"] == ["ops@example.com"]
    message = parsed(recorded)
    assert message["Subject"] == "Certificate expiring: mc-api-prod"
    assert message["From"] == FROM
    assert message["To"] == "ops@example.com"
    assert message["X-Certctl-Event-ID"] == event.id
    assert message["Message-ID"].endswith("@example.com>")
    assert message.get_content().strip() == "api.example.com expires in 7 days"


def test_starttls_with_a_trusted_ca_delivers_over_tls(settings, smtp_server, trust_test_ca):
    port, mailbox = smtp_server(starttls=True)
    configure_email(settings, port, use_tls=True)

    result = build_notifier("Email").send_smtp(email_event())

    assert result.ok
    [recorded] = mailbox.messages
    assert parsed(recorded)["To"] == "ops@example.com"


def test_starttls_with_an_untrusted_certificate_is_transient_and_sends_nothing(
    settings, smtp_server, tmp_path, monkeypatch
):
    port, mailbox = smtp_server(starttls=True)
    configure_email(settings, port, use_tls=True)
    empty_store = tmp_path / "empty.pem"
    empty_store.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty_store))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))

    result = build_notifier("Email").send_smtp(email_event())

    assert not result.ok
    assert not result.permanent
    assert "TLS certificate not trusted" in result.error
    assert mailbox.messages == []


def test_use_tls_against_a_server_without_starttls_is_permanent(settings, smtp_server):
    port, mailbox = smtp_server(starttls=False)
    configure_email(settings, port, use_tls=True)

    result = build_notifier("Email").send_smtp(email_event())

    assert result.permanent
    assert "does not offer STARTTLS" in result.error
    assert "CERTCTL_SMTP_USE_TLS=false" in result.error
    assert mailbox.messages == []


def test_implicit_tls_delivers(smtp_server, client_tls_context):
    port, mailbox = smtp_server(implicit_tls=True)
    notifier = EmailNotifier("127.0.0.1", port, FROM, ssl_context=client_tls_context, implicit_tls=True)

    result = notifier.send_smtp(email_event())

    assert result.ok
    assert len(mailbox.messages) == 1


@pytest.mark.parametrize(
    ("port", "use_tls", "implicit"),
    [(465, True, True), (587, True, False), (25, True, False), (465, False, False)],
)
def test_implicit_tls_is_chosen_by_port_465(settings, port, use_tls, implicit):
    configure_email(settings, port, use_tls=use_tls)

    assert build_notifier("Email").implicit_tls is implicit


def test_starttls_with_login_delivers(settings, smtp_server, trust_test_ca):
    port, mailbox = smtp_server(starttls=True, auth=True)
    configure_email(settings, port, use_tls=True, username=SMTP_USER, password=SMTP_PASSWORD)

    result = build_notifier("Email").send_smtp(email_event())

    assert result.ok
    [recorded] = mailbox.messages
    assert recorded["login"] == SMTP_USER


def test_wrong_password_is_permanent_and_never_shows_the_password(settings, smtp_server, trust_test_ca):
    port, mailbox = smtp_server(starttls=True, auth=True)
    configure_email(settings, port, use_tls=True, username=SMTP_USER, password="wrong-" + SMTP_PASSWORD)

    result = build_notifier("Email").send_smtp(email_event())

    assert result.permanent
    assert "rejected the login" in result.error
    assert "CERTCTL_SMTP_PASSWORD" in result.error
    assert SMTP_PASSWORD not in result.error
    assert mailbox.messages == []


def test_login_without_tls_on_a_server_that_offers_auth_only_over_tls_is_permanent(settings, smtp_server):
    port, mailbox = smtp_server(starttls=True, auth=True)
    configure_email(settings, port, use_tls=False, username=SMTP_USER, password=SMTP_PASSWORD)

    result = build_notifier("Email").send_smtp(email_event())

    assert result.permanent
    assert "does not offer AUTH" in result.error
    assert SMTP_PASSWORD not in result.error
    assert mailbox.messages == []


def test_recipient_refused_with_5xx_is_permanent(settings, smtp_server):
    port, mailbox = smtp_server()
    mailbox.refusals["gone@example.com"] = "550 5.1.1 mailbox unavailable"
    configure_email(settings, port)

    result = build_notifier("Email").send_smtp(email_event(recipient="gone@example.com"))

    assert result.permanent
    assert "refused recipient gone@example.com: 550 5.1.1 mailbox unavailable" in result.error
    assert mailbox.messages == []


def test_recipient_refused_with_4xx_is_transient(settings, smtp_server):
    port, mailbox = smtp_server()
    mailbox.refusals["busy@example.com"] = "451 4.7.1 greylisted, try again later"
    configure_email(settings, port)

    result = build_notifier("Email").send_smtp(email_event(recipient="busy@example.com"))

    assert not result.ok
    assert not result.permanent
    assert "451 4.7.1 greylisted" in result.error


def test_server_that_never_answers_is_a_transient_timeout(settings, fast_timeouts, silent_smtp_port):
    configure_email(settings, silent_smtp_port, use_tls=True)
    notifier, event = build_notifier("Email"), email_event()

    result = finishes_within(TIMEOUT_BOUND_S, lambda: notifier.send_smtp(event))

    assert not result.ok
    assert not result.permanent
    assert "no answer within 0.5s" in result.error
    assert "CERTCTL_NOTIFICATION_CONNECT_TIMEOUT + CERTCTL_NOTIFICATION_READ_TIMEOUT" in result.error


def test_connection_refused_is_transient(settings, closed_port):
    configure_email(settings, closed_port)

    result = build_notifier("Email").send_smtp(email_event())

    assert not result.ok
    assert not result.permanent
    assert "could not connect" in result.error


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"recipient": "ops@example.com\r\nBcc: victim@example.com"}, "recipient"),
        ({"recipient": "ops@example.com\nBcc: victim@example.com"}, "recipient"),
        ({"certificate_id": "mc-1\r\nBcc: victim@example.com"}, "subject"),
        ({"recipient": "not an address"}, "recipient"),
    ],
)
def test_header_injection_never_reaches_the_server(settings, smtp_server, fields, problem):
    port, mailbox = smtp_server()
    configure_email(settings, port)

    result = build_notifier("Email").send_smtp(email_event(**fields))

    assert result.permanent
    assert result.error.startswith(f"Email refused before sending: {problem}")
    assert mailbox.messages == []


def test_implicit_tls_server_that_never_answers_the_handshake_is_a_transient_timeout(
    fast_timeouts, silent_smtp_port, client_tls_context
):
    notifier = EmailNotifier("127.0.0.1", silent_smtp_port, FROM, ssl_context=client_tls_context, implicit_tls=True)
    event = email_event()

    result = finishes_within(TIMEOUT_BOUND_S, lambda: notifier.send_smtp(event))

    assert not result.ok
    assert not result.permanent
    assert "no answer within 0.5s" in result.error
