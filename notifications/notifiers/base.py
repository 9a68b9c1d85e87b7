"""What every channel shares: the result of one delivery, the notifier interface and its configuration fields."""
import dataclasses
from collections.abc import Mapping
from datetime import timedelta
from email.utils import getaddresses, parseaddr
from typing import Any, Literal, Self

import httpx
from django.utils.functional import classproperty

# Config values travel in JSON columns, URLs and headers: PostgreSQL cannot store NUL, and 2,000 characters is more
# than any channel's URL or key needs.
MAX_CONFIG_TEXT_LENGTH = 2000
# A list of addresses becomes an event's recipient, whose limit this is.
MAX_ADDRESS_LIST_LENGTH = 1024


@dataclasses.dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    error: str = ""
    permanent: bool = False
    retry_after: timedelta | None = None
    http_status: int | None = None

    @classmethod
    def success(cls, http_status: int | None = None) -> "DeliveryResult":
        return cls(ok=True, http_status=http_status)

    @classmethod
    def transient(
        cls, error: str, http_status: int | None = None, retry_after: timedelta | None = None
    ) -> "DeliveryResult":
        return cls(ok=False, error=error, http_status=http_status, retry_after=retry_after)

    @classmethod
    def permanent_failure(cls, error: str, http_status: int | None = None) -> "DeliveryResult":
        return cls(ok=False, error=error, permanent=True, http_status=http_status)


@dataclasses.dataclass(frozen=True)
class ConfigField:
    """One value a notifier is built from, declared once: the key of its config dict (a parameter of the notifier),
    the setting an environment-configured channel takes it from, whether the channel cannot work without it, whether
    it is secret, and its kind. An `emails` value is one string of comma-separated e-mail addresses.

    A secret value is hidden wherever it could appear (error texts, logs, the access log). A secret `url` is a URL
    with a token in it (a chat webhook's): its path, query and every token-like piece are hidden. A `url` that is not
    secret (an API endpoint) has only the credentials of its userinfo (user:password@) hidden.
    """

    name: str
    setting: str
    required: bool = False
    secret: bool = False
    kind: Literal["text", "url", "email", "emails", "int", "bool"] = "text"
    choices: tuple[str, ...] = ()

    def problem(self, value: object) -> str | None:
        """Why `value` cannot be this field's (its kind, its choices), or None. An empty value is judged by
        `required`, not here."""
        if self.kind == "bool":
            return None if isinstance(value, bool) else "must be true or false"
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                return "must be a whole number"
            return None if 1 <= value <= 65535 else "must be between 1 and 65535"
        if not isinstance(value, str):
            return "must be a string"
        if "\x00" in value or len(value) > MAX_CONFIG_TEXT_LENGTH:
            return f"must be at most {MAX_CONFIG_TEXT_LENGTH} characters, without NUL"
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}"
        if self.kind == "url":
            return _url_problem(value)
        if self.kind == "email":
            return _address_problem(value)
        if self.kind == "emails":
            return address_list_problem(value)
        return None


def _url_problem(value: str) -> str | None:
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError):
        return "must be an http(s) URL"
    if url.scheme not in ("http", "https") or not url.host or any(ch.isspace() for ch in value):
        return "must be an http(s) URL with a host, e.g. https://hooks.example.com/alerts"
    return None


def _address_problem(value: str) -> str | None:
    name, address = parseaddr(value)
    if any(ch in value for ch in "\r\n") or "@" not in address or (address != value.strip() and not name):
        return "must be an e-mail address, e.g. alerts@example.com"
    return None


def split_addresses(value: str) -> list[str]:
    """The addresses of a comma-separated list, each as given (a quoted display name may hold a comma)."""
    pieces: list[str] = []
    current, quoted = "", False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            pieces.append(current.strip())
            current = ""
        else:
            current += ch
    pieces.append(current.strip())
    return [piece for piece in pieces if piece]


def address_list_problem(value: str) -> str | None:
    """Why `value` is not a comma-separated list of e-mail addresses, or None."""
    addresses = split_addresses(value)
    if not addresses:
        return "must list at least one e-mail address, e.g. pki@example.com, oncall@example.com"
    if len(value) > MAX_ADDRESS_LIST_LENGTH:
        return f"must be at most {MAX_ADDRESS_LIST_LENGTH} characters"
    for address in addresses:
        if _address_problem(address) or len(getaddresses([address])) != 1:
            return f"{address[:70]!r} is not an e-mail address; give addresses separated by commas"
    return None


class Notifier:
    """One channel. `send` never raises for delivery problems: it returns a DeliveryResult.

    `destination` names the server the channel talks to; the delivery engine caps the sends in flight
    per destination, so that one slow receiver cannot take every slot.
    """

    channel = ""
    # The values the notifier is built from (its parameters), for the registry (notifications.notifiers).
    fields: tuple[ConfigField, ...] = ()
    # True for a notifier whose send runs in a thread (smtplib): it cannot be cancelled, only time out by itself.
    blocking = False

    @classproperty
    def required_settings(cls) -> tuple[str, ...]:
        """The settings an environment-configured channel cannot work without."""
        return tuple(field.setting for field in cls.fields if field.required)

    @classmethod
    def config_from_settings(cls, settings: Any) -> dict[str, Any]:
        """The config dict of the channel configured by the settings its fields name."""
        return {field.name: getattr(settings, field.setting) for field in cls.fields}

    @classmethod
    def config_problems(cls, config: Mapping[str, Any]) -> dict[str, str]:
        """What is wrong with `config` as this channel's configuration, {field name: problem}; {} when it can be
        used. Unknown fields are refused (naming the accepted ones), required ones must be given, each value must
        be of its field's kind and among its choices, and the channel's own checks (extra_problems) run last."""
        accepted = {field.name: field for field in cls.fields}
        problems = {
            name: f"unknown field for the {cls.channel} channel; accepted are {', '.join(accepted)}"
            for name in config if name not in accepted
        }
        for name, field in accepted.items():
            value = config.get(name)
            if value is None or value == "":
                if field.required:
                    problems[name] = f"required for the {cls.channel} channel"
                continue
            problem = field.problem(value)
            if problem:
                problems[name] = problem
        if not problems:
            problems.update(cls.extra_problems(config))
        return problems

    @classmethod
    def extra_problems(cls, config: Mapping[str, Any]) -> dict[str, str]:
        """The channel's own checks of a config whose fields are each valid (a notifier overrides it)."""
        return {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        return cls(**config)

    @classmethod
    def from_settings(cls, settings: Any) -> Self:
        return cls.from_config(cls.config_from_settings(settings))

    @property
    def destination(self) -> str:
        raise NotImplementedError

    async def send(self, event: Any, client: httpx.AsyncClient) -> DeliveryResult:
        raise NotImplementedError
