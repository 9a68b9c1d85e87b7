"""Channel notifiers and the registry that builds them from settings.

The registry is a table keyed by Channel, filled from the notifier modules of this package: each notifier class
declares its `channel`, the settings it cannot work without (`required_settings`), the settings whose values are
secret (`secret_settings`) or are URLs carrying a token (`secret_url_settings`), its other URLs (`url_settings`: only
their userinfo is secret), and `from_settings`. Adding a channel is a new module here and a new Channel choice.
"""
import functools
import importlib
import pkgutil
from dataclasses import dataclass

from django.conf import settings

from notifications.notifiers.base import DeliveryResult, Notifier


@functools.cache
def notifiers() -> dict[str, type[Notifier]]:
    """{channel: notifier class}, in Channel order. Built on first use: logging imports this package before
    Django's models can be."""
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
                raise ImportError(f"two notifiers for channel {cls.channel}: {table[cls.channel].__name__}, {cls.__name__}")
            table[cls.channel] = cls
    missing = [channel for channel in Channel.values if channel not in table]
    if missing:
        raise ImportError(f"no notifier for channel(s) {', '.join(missing)}: add a module to notifications/notifiers")
    return {channel: table[channel] for channel in Channel.values}


def _declared(channel: str, name: str) -> tuple[str, ...]:
    return tuple(getattr(notifiers()[channel], name, ()))


def required_settings(channel: str) -> tuple[str, ...]:
    return _declared(channel, "required_settings")


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


def _declared_names(name: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(setting for channel in notifiers() for setting in _declared(channel, name)))


def secret_setting_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(names of secret settings, names of secret URL settings) that the notifiers declare."""
    return _declared_names("secret_settings"), _declared_names("secret_url_settings")


def _configured(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(value for value in (getattr(settings, name, "") or "" for name in names) if value)


def secret_settings() -> ConfiguredSecrets:
    """Every configured secret value, secret URL and other channel URL of every channel (unset ones left out)."""
    value_names, url_names = secret_setting_names()
    return ConfiguredSecrets(
        values=_configured(value_names), urls=_configured(url_names), endpoint_urls=_configured(_declared_names("url_settings")),
    )


__all__ = [
    "ConfiguredSecrets", "DeliveryResult", "Notifier", "build_notifier", "channel_status",
    "missing_settings", "not_configured_error", "notifiers", "required_settings", "secret_settings",
]
