"""Channel notifiers and the registry that builds them: the one place that says how a channel is configured and
what of its configuration is secret.

The registry is a table keyed by Channel, filled from the notifier modules of this package: each notifier class
declares its `channel` and its configuration `fields` (notifications.notifiers.base.ConfigField: the parameter, the
setting it comes from, required, secret, kind). Building a notifier, the dashboard's "not configured: set …" and
every redaction of configured secrets (error texts, the log filter, the access log) read those declarations. Adding a
channel is a new module here and a new Channel choice.
"""
import functools
import importlib
import pkgutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DatabaseError

from notifications.keys import key_values
from notifications.notifiers.base import ConfigField, DeliveryResult, Notifier
from notifications.redaction import Secrets, hidden_fragments
from notifications.sealing import SealingError, unseal

if TYPE_CHECKING:
    from notifications.models import Destination

# The service's own secrets, beside the channels' (the API keys and the database password are read apart).
SERVICE_SECRET_SETTINGS = ("CERTCTL_METRICS_TOKEN", "SECRET_KEY")


@functools.cache
def notifiers() -> dict[str, type[Notifier]]:
    """{channel: notifier class}, in Channel order. Built on first use: the logging configuration imports this
    package before Django's models can be."""
    from notifications.models import Channel

    table: dict[str, type[Notifier]] = {}
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    pending = list(Notifier.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.channel:
            if cls.channel in table:
                raise ImportError(
                    f"two notifiers for channel {cls.channel}: {table[cls.channel].__name__}, {cls.__name__}"
                )
            table[cls.channel] = cls
    missing = [channel for channel in Channel.values if channel not in table]
    if missing:
        raise ImportError(f"no notifier for channel(s) {', '.join(missing)}: add a module to notifications/notifiers")
    return {channel: table[channel] for channel in Channel.values}


def required_settings(channel: str) -> tuple[str, ...]:
    required: tuple[str, ...] = notifiers()[channel].required_settings
    return required


def missing_settings(channel: str) -> list[str]:
    return [name for name in required_settings(channel) if not getattr(settings, name, "")]


def not_configured_error(channel: str) -> str:
    missing = missing_settings(channel)
    return f"{channel} channel is not configured: set {' and '.join(missing)}"


def build_notifier(channel: str) -> Notifier | None:
    """The notifier for `channel` from current settings, or None when it is not configured."""
    if channel not in notifiers():
        raise ValueError(f"unknown channel {channel!r}")
    if missing_settings(channel):
        return None
    return notifiers()[channel].from_settings(settings)


def destination_config(destination: "Destination") -> dict[str, Any]:
    """The config dict of `destination`'s notifier: an environment destination's from the settings, a stored one's
    from its fields with the secret ones unsealed (notifications.sealing.SealingError when no key opens them)."""
    if destination.from_environment:
        return notifiers()[destination.channel].config_from_settings(settings)
    return {**destination.config, **unseal(destination.sealed_secrets)}


def destination_problem(destination: "Destination") -> str | None:
    """Why `destination` cannot deliver (its required fields unset, its secrets unreadable), or None."""
    if destination.from_environment:
        return not_configured_error(destination.channel) if missing_settings(destination.channel) else None
    try:
        config = destination_config(destination)
    except SealingError as exc:
        return f"destination {destination.name}: {exc}"
    fields = notifiers()[destination.channel].fields
    missing = [field.name for field in fields if field.required and not config.get(field.name)]
    if missing:
        return f"destination {destination.name} is not configured: set {' and '.join(missing)}"
    return None


def build_destination_notifier(destination: "Destination") -> Notifier | None:
    """The notifier of `destination`, or None when it cannot deliver (destination_problem says why)."""
    if destination_problem(destination):
        return None
    return notifiers()[destination.channel].from_config(destination_config(destination))


def secret_fields(channel: str) -> tuple[str, ...]:
    """The names of `channel`'s secret fields: stored sealed, never shown."""
    return tuple(field.name for field in notifiers()[channel].fields if field.secret)


def secrets_set(destination: "Destination") -> list[str]:
    """The names of `destination`'s secret fields that have a value (an environment destination's: whose setting is
    set). Raises SealingError when a stored destination's secrets cannot be opened."""
    fields = [field for field in notifiers()[destination.channel].fields if field.secret]
    if destination.from_environment:
        return [field.name for field in fields if getattr(settings, field.setting, "")]
    opened = unseal(destination.sealed_secrets)
    return [field.name for field in fields if opened.get(field.name)]


def channel_status() -> dict[str, tuple[bool, list[str]]]:
    """{channel: (configured, missing setting names)} for dashboards and health pages."""
    return {channel: (not missing_settings(channel), missing_settings(channel)) for channel in notifiers()}


@dataclass(frozen=True)
class ConfiguredSecrets:
    """The channels' secret values in the current settings, their secret URLs (whose path and query carry
    tokens) and their other URLs (whose userinfo may carry a password), for redaction."""

    values: tuple[str, ...]
    urls: tuple[str, ...]
    endpoint_urls: tuple[str, ...] = ()


def _declared(secret: bool, url: bool) -> tuple[ConfigField, ...]:
    fields = (field for cls in notifiers().values() for field in cls.fields)
    return tuple(field for field in fields if field.secret == secret and (field.kind == "url") == url)


def _configured(fields: tuple[ConfigField, ...]) -> tuple[str, ...]:
    values = (getattr(settings, setting, "") or "" for setting in dict.fromkeys(field.setting for field in fields))
    return tuple(value for value in values if value)


@dataclass(frozen=True)
class _StoredSecrets:
    """The secret values and secret URLs of the live stored destinations, as read at configuration `version`."""

    version: int
    values: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()


# Read once per configuration version, not once per log line: the log filter redacts with every configured secret.
_stored_secrets = _StoredSecrets(version=-1)


def refresh_stored_secrets() -> None:
    """Read the stored destinations' secrets again if a destination changed since they were last read
    (ConfigVersion): called once per request, once per delivery pass and after each destination change, so that a
    new secret is hidden from the next request or pass on. A database that does not answer keeps the last read."""
    global _stored_secrets
    from notifications.models import ConfigVersion, Destination

    try:
        version = ConfigVersion.objects.current()
        if version == _stored_secrets.version:
            return
        rows = list(
            Destination.objects.live().filter(from_environment=False).exclude(sealed_secrets="")
            .values_list("channel", "sealed_secrets")
        )
    except DatabaseError:
        return
    values: set[str] = set()
    urls: set[str] = set()
    for channel, token in rows:
        try:
            opened = unseal(token)
        except SealingError:
            continue  # destination_problem reports it; nothing it holds can reach a receiver or a log
        url_fields = {field.name for field in notifiers()[channel].fields if field.kind == "url"}
        for name, value in opened.items():
            if value:
                (urls if name in url_fields else values).add(value)
    _stored_secrets = _StoredSecrets(version, tuple(sorted(values)), tuple(sorted(urls)))


def secret_settings() -> ConfiguredSecrets:
    """Every configured secret value, secret URL and other channel URL of every channel (unset ones left out),
    with the secret values and URLs of the stored destinations (as last read by refresh_stored_secrets)."""
    stored = _stored_secrets
    return ConfiguredSecrets(
        values=_configured(_declared(secret=True, url=False)) + stored.values,
        urls=_configured(_declared(secret=True, url=True)) + stored.urls,
        endpoint_urls=_configured(_declared(secret=False, url=True)),
    )


def configured_secrets() -> Secrets:
    """Every secret in the current settings, as fragments to hide (notifications.redaction.secret_fragments): the
    channels' (as their fields declare them), the service's own, the API keys and the database password."""
    channels = secret_settings()
    service = tuple(getattr(settings, name) for name in SERVICE_SECRET_SETTINGS)
    database_password = settings.DATABASES["default"].get("PASSWORD") or ""
    return hidden_fragments(
        (*service, *channels.values, *key_values(settings.CERTCTL_API_KEYS_NAMED), database_password),
        channels.urls,
        channels.endpoint_urls,
    )


__all__ = [
    "ConfigField", "ConfiguredSecrets", "DeliveryResult", "Notifier", "build_destination_notifier", "build_notifier",
    "channel_status", "destination_config", "destination_problem",
    "configured_secrets", "missing_settings", "not_configured_error", "notifiers", "refresh_stored_secrets",
    "required_settings", "secret_fields", "secret_settings", "secrets_set",
]
