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


def secret_settings() -> ConfiguredSecrets:
    """Every configured secret value, secret URL and other channel URL of every channel (unset ones left out)."""
    return ConfiguredSecrets(
        values=_configured(_declared(secret=True, url=False)),
        urls=_configured(_declared(secret=True, url=True)),
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
    "configured_secrets", "missing_settings", "not_configured_error", "notifiers", "required_settings",
    "secret_settings",
]
