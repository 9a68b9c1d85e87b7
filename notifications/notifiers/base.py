"""What every channel shares: the result of one delivery, the notifier interface and its configuration fields."""
import dataclasses
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal, Self

import httpx
from django.utils.functional import classproperty


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
    it is secret, and its kind.

    A secret value is hidden wherever it could appear (error texts, logs, the access log). A secret `url` is a URL
    with a token in it (a chat webhook's): its path, query and every token-like piece are hidden. A `url` that is not
    secret (an API endpoint) has only the credentials of its userinfo (user:password@) hidden.
    """

    name: str
    setting: str
    required: bool = False
    secret: bool = False
    kind: Literal["text", "url", "email", "int", "bool"] = "text"
    choices: tuple[str, ...] = ()


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
