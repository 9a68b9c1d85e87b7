import smtplib
import socket
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from django.conf import settings

from notifications.notifiers.base import DeliveryResult, Notifier


def _bad_address(value):
    if any(ch in value for ch in "\r\n"):
        return "contains a line break"
    name, address = parseaddr(value)
    if not address or "@" not in address or address != value.strip() and not name:
        return "is not an e-mail address"
    return ""


class EmailNotifier(Notifier):
    """SMTP with STARTTLS (587), implicit TLS (465) or plain (CERTCTL_SMTP_USE_TLS=false)."""

    channel = "Email"

    def __init__(self, host, port, from_address, username="", password="", use_tls=True, ssl_context=None):
        self.host = host
        self.port = port
        self.from_address = from_address
        self.username = username
        self.password = password
        self.use_tls = use_tls
        self.ssl_context = ssl_context or ssl.create_default_context()

    def build_message(self, event):
        problem = _bad_address(event.recipient)
        if problem:
            raise ValueError(f"recipient {event.recipient!r} {problem}")
        subject = event.subject
        if any(ch in subject for ch in "\r\n"):
            raise ValueError("subject contains a line break")
        message = EmailMessage()
        message["From"] = self.from_address
        message["To"] = event.recipient
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(idstring=event.id.replace("-", "."))
        message["X-Certctl-Event-ID"] = event.id
        message.set_content(event.message)
        return message

    def send(self, event):
        try:
            message = self.build_message(event)
        except ValueError as exc:
            return DeliveryResult.permanent_failure(f"Email refused before sending: {exc}")
        timeout = (settings.CERTCTL_NOTIFICATION_CONNECT_TIMEOUT + settings.CERTCTL_NOTIFICATION_READ_TIMEOUT).total_seconds()
        where = f"SMTP server {self.host}:{self.port}"
        try:
            if self.use_tls and self.port == 465:
                client = smtplib.SMTP_SSL(self.host, self.port, timeout=timeout, context=self.ssl_context)
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=timeout)
            with client:
                if self.use_tls and self.port != 465:
                    client.starttls(context=self.ssl_context)
                    client.ehlo()
                if self.username:
                    client.login(self.username, self.password)
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reason = next(iter(exc.recipients.values()))
            return self._smtp_code_result(where, f"refused recipient {event.recipient}", code, reason)
        except smtplib.SMTPAuthenticationError as exc:
            return DeliveryResult.permanent_failure(
                f"{where} rejected the login of CERTCTL_SMTP_USERNAME ({exc.smtp_code}); check the credentials"
            )
        except smtplib.SMTPNotSupportedError:
            return DeliveryResult.permanent_failure(
                f"{where} does not offer STARTTLS; use port 465 for implicit TLS or set CERTCTL_SMTP_USE_TLS=false"
            )
        except smtplib.SMTPResponseException as exc:
            return self._smtp_code_result(where, "refused the message", exc.smtp_code, exc.smtp_error)
        except (socket.timeout, TimeoutError):
            return DeliveryResult.transient(f"{where}: no answer within {timeout:g}s")
        except ssl.SSLError as exc:
            return DeliveryResult.transient(f"{where}: TLS failed ({exc.reason or exc})")
        except (OSError, smtplib.SMTPException) as exc:
            return DeliveryResult.transient(f"{where}: {exc or type(exc).__name__}")
        return DeliveryResult.success()

    @staticmethod
    def _smtp_code_result(where, what, code, reason):
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        text = f"{where} {what}: {code} {reason}".strip()
        # 5xx is a final answer from the server; 4xx asks us to try again later.
        if 500 <= int(code) < 600:
            return DeliveryResult.permanent_failure(text)
        return DeliveryResult.transient(text)
