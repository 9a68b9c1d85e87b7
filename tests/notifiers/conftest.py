"""Local servers for the channel tests: SMTP (aiosmtpd, plain / STARTTLS / implicit TLS) and a test CA."""
import socket
import ssl
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from notifications.models import NotificationEvent

SMTP_USER = "certctl-mailer"
SMTP_PASSWORD = "s3cret-smtp-pa55word"


def make_event(**overrides):
    """An unsaved event: the notifiers only read it."""
    fields = dict(
        type="ExpirationWarning", channel="Webhook", recipient="ops@example.com",
        message="api.example.com expires in 7 days", certificate_id="mc-api-prod", severity="critical",
    )
    fields.update(overrides)
    return NotificationEvent(**fields)


@pytest.fixture
def fast_timeouts(settings):
    """Timeouts short enough that a stuck server costs the test a fraction of a second."""
    settings.CERTCTL_NOTIFICATION_CONNECT_TIMEOUT = timedelta(milliseconds=200)
    settings.CERTCTL_NOTIFICATION_READ_TIMEOUT = timedelta(milliseconds=300)
    return settings


@pytest.fixture(scope="session")
def test_ca():
    return trustme.CA()


@pytest.fixture(scope="session")
def server_tls_context(test_ca):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    test_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def client_tls_context(test_ca):
    context = ssl.create_default_context()
    test_ca.configure_trust(context)
    return context


@pytest.fixture
def trust_test_ca(test_ca, tmp_path, monkeypatch):
    """Make the test CA the system trust store, as an operator with a private CA would (SSL_CERT_FILE)."""
    path = tmp_path / "test-ca.pem"
    test_ca.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    return path


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class MailRecorder:
    """aiosmtpd handler: keeps what was accepted, and refuses the recipients it is told to."""

    refusals: dict = field(default_factory=dict)
    messages: list = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refusals:
            return self.refusals[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            {"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "data": envelope.content.decode(),
             "login": session.auth_data.login.decode() if session.authenticated else None}
        )
        return "250 Message accepted"


def _authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == SMTP_USER and (
        auth_data.password.decode() == SMTP_PASSWORD
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@pytest.fixture
def smtp_server(server_tls_context):
    """Start a local SMTP server: smtp_server(starttls=False, implicit_tls=False, auth=False) -> (port, recorder)."""
    started = []

    def start(starttls=False, implicit_tls=False, auth=False):
        recorder = MailRecorder()
        options = {}
        if starttls:
            options["tls_context"] = server_tls_context
        if auth:
            options["authenticator"] = _authenticate
        controller = Controller(
            recorder, hostname="127.0.0.1", port=_free_port(),
            ssl_context=server_tls_context if implicit_tls else None, **options,
        )
        controller.start()
        started.append(controller)
        return controller.port, recorder

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture
def silent_smtp_port():
    """A port that accepts TCP connections (the kernel completes them) but never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]
