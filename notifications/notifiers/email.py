import asyncio
import base64
import dataclasses
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import TYPE_CHECKING

import httpx
from django.conf import settings

from notifications.notifiers import configured_secrets
from notifications.notifiers.base import ConfigField, DeliveryResult, Notifier, split_addresses
from notifications.redaction import Secrets, redacted_excerpt, secret_fragments

if TYPE_CHECKING:
    from notifications.models import NotificationEvent

_TIMEOUT_SETTINGS = "CERTCTL_NOTIFICATION_CONNECT_TIMEOUT + CERTCTL_NOTIFICATION_READ_TIMEOUT"


def _bad_address(value: str) -> str:
    if any(ch in value for ch in "\r\n"):
        return "contains a line break"
    name, address = parseaddr(value)
    if not address or "@" not in address or (address != value.strip() and not name):
        return "is not an e-mail address"
    return ""


def _timed_out(exc: BaseException) -> bool:
    # smtplib turns a read timeout into SMTPServerDisconnected; the timeout survives as its context.
    return isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)


class EmailNotifier(Notifier):
    """SMTP with STARTTLS (587), implicit TLS (465) or plain (CERTCTL_SMTP_USE_TLS=false).

    `implicit_tls` defaults to "the port is 465"; `ssl_context` defaults to the system trust store,
    which honours SSL_CERT_FILE / SSL_CERT_DIR for a private CA.
    """

    channel = "Email"
    blocking = True
    fields = (
        ConfigField("host", setting="CERTCTL_SMTP_HOST", required=True),
        ConfigField("port", setting="CERTCTL_SMTP_PORT", kind="int"),
        ConfigField("from_address", setting="CERTCTL_SMTP_FROM_ADDRESS", required=True, kind="email"),
        ConfigField("username", setting="CERTCTL_SMTP_USERNAME"),
        ConfigField("password", setting="CERTCTL_SMTP_PASSWORD", secret=True),
        ConfigField("use_tls", setting="CERTCTL_SMTP_USE_TLS", kind="bool"),
        # Where an alert that names no recipient goes (operations.alerts); an event names its own.
        ConfigField("recipients", setting="CERTCTL_SMTP_RECIPIENTS", kind="emails"),
    )

    def __init__(
        self, host: str, port: int = 587, from_address: str = "", username: str = "", password: str = "",
        use_tls: bool = True, recipients: str = "", ssl_context: ssl.SSLContext | None = None,
        implicit_tls: bool | None = None,
    ):
        self.host = host
        self.port = port
        self.from_address = from_address
        self.username = username
        self.password = password
        self.use_tls = use_tls
        self.recipients = recipients
        self.implicit_tls = use_tls and (port == 465 if implicit_tls is None else implicit_tls)
        self.ssl_context = ssl_context or ssl.create_default_context()

    def build_message(self, event: "NotificationEvent") -> EmailMessage:
        # An event's recipient is one address or several, comma-separated (an Email destination's recipients).
        addresses = split_addresses(event.recipient)
        if not addresses:
            raise ValueError(f"recipient {event.recipient!r} is not an e-mail address")
        for address in addresses:
            problem = _bad_address(address)
            if problem:
                raise ValueError(f"recipient {address!r} {problem}")
        problem = _bad_address(self.from_address)
        if problem:
            raise ValueError(f"sender CERTCTL_SMTP_FROM_ADDRESS {self.from_address!r} {problem}")
        subject = event.subject
        if any(ch in subject for ch in "\r\n"):
            raise ValueError(f"subject {subject!r} contains a line break (from the certificate id)")
        message = EmailMessage()
        message["From"] = self.from_address
        message["To"] = ", ".join(addresses)
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        # The sender's domain, not socket.getfqdn(): a slow reverse DNS lookup would escape every timeout.
        domain = parseaddr(self.from_address)[1].rpartition("@")[2] or "certctl.invalid"
        message["Message-ID"] = make_msgid(idstring=event.id.replace("-", "."), domain=domain)
        message["X-Certctl-Event-ID"] = event.id
        message.set_content(event.message)
        return message

    @property
    def destination(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    async def send(self, event: "NotificationEvent", client: httpx.AsyncClient) -> DeliveryResult:
        # smtplib blocks: it runs on the event loop's executor, whose size the delivery engine bounds.
        return await asyncio.get_running_loop().run_in_executor(None, self.send_smtp, event)

    def send_smtp(self, event: "NotificationEvent") -> DeliveryResult:
        try:
            message = self.build_message(event)
        except ValueError as exc:
            return DeliveryResult.permanent_failure(f"Email refused before sending: {exc}")
        result = self._deliver(event, message)
        if result.error:
            return dataclasses.replace(result, error=redacted_excerpt(result.error, self._secrets()))
        return result

    def _credentials(self) -> tuple[str, ...]:
        """The password, and the AUTH PLAIN and AUTH LOGIN strings a server may echo in its reply."""
        if not self.password:
            return ()
        return (
            self.password,
            base64.b64encode(f"\0{self.username}\0{self.password}".encode()).decode(),
            base64.b64encode(self.password.encode()).decode(),
        )

    def _secrets(self) -> Secrets:
        return secret_fragments("", *self._credentials()) + configured_secrets()

    def _reply(self, text: str) -> str:
        """What the server said, with the channel's secrets hidden from 4 characters on (redaction's in_reply)."""
        return redacted_excerpt(text, secret_fragments("", *self._credentials(), in_reply=True) + self._secrets())

    def _deliver(self, event: "NotificationEvent", message: EmailMessage) -> DeliveryResult:
        timeout = (
            settings.CERTCTL_NOTIFICATION_CONNECT_TIMEOUT + settings.CERTCTL_NOTIFICATION_READ_TIMEOUT
        ).total_seconds()
        where = f"SMTP server {self.host}:{self.port}"
        try:
            client: smtplib.SMTP
            if self.implicit_tls:
                client = smtplib.SMTP_SSL(self.host, self.port, timeout=timeout, context=self.ssl_context)
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=timeout)
            with client:
                client.ehlo()
                if self.use_tls and not self.implicit_tls:
                    if not client.has_extn("starttls"):
                        return DeliveryResult.permanent_failure(
                            f"{where} does not offer STARTTLS; use port 465 for implicit TLS "
                            "or set CERTCTL_SMTP_USE_TLS=false"
                        )
                    client.starttls(context=self.ssl_context)
                    client.ehlo()
                if self.username:
                    if not client.has_extn("auth"):
                        return DeliveryResult.permanent_failure(
                            f"{where} does not offer AUTH on this connection (most servers offer it only over TLS); "
                            "enable CERTCTL_SMTP_USE_TLS or unset CERTCTL_SMTP_USERNAME"
                        )
                    client.login(self.username, self.password)
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reason = next(iter(exc.recipients.values()))
            return self._smtp_code_result(where, f"refused recipient {event.recipient}", code, reason)
        except smtplib.SMTPAuthenticationError as exc:
            return DeliveryResult.permanent_failure(
                f"{where} rejected the login of CERTCTL_SMTP_USERNAME {self.username!r} ({exc.smtp_code}); "
                "check CERTCTL_SMTP_USERNAME and CERTCTL_SMTP_PASSWORD"
            )
        except smtplib.SMTPResponseException as exc:
            return self._smtp_code_result(where, "refused the message", exc.smtp_code, exc.smtp_error)
        except ssl.SSLCertVerificationError as exc:
            return DeliveryResult.transient(
                f"{where}: TLS certificate not trusted ({exc.verify_message}); install its CA (SSL_CERT_FILE) "
                "or fix the server's certificate"
            )
        except ssl.SSLError as exc:
            return DeliveryResult.transient(f"{where}: TLS failed ({exc.reason or exc}); will retry")
        except (OSError, smtplib.SMTPException) as exc:
            if _timed_out(exc):
                return DeliveryResult.transient(
                    f"{where}: no answer within {timeout:g}s ({_TIMEOUT_SETTINGS}); will retry"
                )
            if isinstance(exc, ConnectionError) and not isinstance(exc, smtplib.SMTPException):
                return DeliveryResult.transient(f"{where}: could not connect ({exc}); will retry")
            return DeliveryResult.transient(f"{where}: {exc or type(exc).__name__}; will retry")
        return DeliveryResult.success()

    def _smtp_code_result(self, where: str, what: str, code: int, reason: bytes | str) -> DeliveryResult:
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        text = f"{where} {what}: {code} {self._reply(reason)}".strip()
        # 5xx is a final answer from the server; 4xx asks us to try again later.
        if 500 <= int(code) < 600:
            return DeliveryResult.permanent_failure(text)
        return DeliveryResult.transient(text + "; will retry")
