"""Managing destinations at runtime: create, update, remove and send a test, one function each, each audited as a
ConfigurationAction and counted in ConfigVersion in the transaction of its change.

Secret fields (those the channel's notifier declares secret) are sealed into `sealed_secrets` and never stored in
`config`; an update that omits one keeps its value, one given as "" clears it. Environment destinations are
defined by the settings: they can be tested, never changed here.
"""
import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.actors import Actor
from notifications.engine.sender import send_event
from notifications.errors import (
    DestinationExists,
    DestinationInUse,
    DestinationNotFound,
    EnvironmentDestination,
    InvalidInput,
    SecretsUnavailable,
    Unprocessable,
)
from notifications.models import (
    Channel,
    ConfigurationAction,
    ConfigurationActionKind,
    ConfigurationTarget,
    ConfigVersion,
    Destination,
    DestinationState,
    EventType,
    NotificationEvent,
    Severity,
    Status,
    destination_name_problem,
)
from notifications.notifiers import (
    build_destination_notifier,
    destination_config,
    destination_problem,
    notifiers,
    refresh_stored_secrets,
    secret_fields,
)
from notifications.notifiers.http import new_http_client
from notifications.queries.destinations import live_destination
from notifications.redaction import Secrets, hidden_fragments, redact
from notifications.sealing import SealingError, reseal, seal, unseal

log = logging.getLogger("notifications.services")

MAX_DESCRIPTION_LENGTH = 500
UNSENT = (Status.PENDING, Status.FAILED)


@dataclass(frozen=True)
class TestOutcome:
    """What one test delivery did: ok, transient (may pass on a retry) or permanent; the receiver's HTTP status,
    how long it took and the error with every secret hidden."""

    outcome: Literal["ok", "transient", "permanent"]
    http_status: int | None
    duration_ms: int
    error: str


def _audit(destination: str, action: str, actor: Actor, detail: Mapping[str, Any]) -> None:
    ConfigurationAction.objects.create(
        target_kind=ConfigurationTarget.DESTINATION, target=destination, action=action, actor=actor.name,
        source=actor.source, detail=dict(detail),
    )


def _settings_of(channel: str) -> list[str]:
    return [field.setting for field in notifiers()[channel].fields]


def _for_update(name: str) -> Destination:
    """The live destination `name`, locked for the transaction; DestinationNotFound otherwise."""
    Destination.objects.ensure_environment()
    found = Destination.objects.select_for_update().filter(name=name, deleted_at__isnull=True).first()
    if found is None:
        raise DestinationNotFound(name)
    return found


def _changeable(name: str) -> Destination:
    destination = _for_update(name)
    if destination.from_environment:
        raise EnvironmentDestination(name, _settings_of(destination.channel))
    return destination


def _description_problem(description: object) -> str | None:
    if not isinstance(description, str):
        return "must be a string"
    if len(description) > MAX_DESCRIPTION_LENGTH or "\x00" in description:
        return f"must be at most {MAX_DESCRIPTION_LENGTH} characters, without NUL"
    return None


def _checked(channel: str, config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """`config` validated by the channel's notifier and split into (non-secret fields, secret fields), empty values
    left out. Raises Unprocessable (well-formed, but not what this channel takes) naming each field as
    config.<field>."""
    problems = notifiers()[channel].config_problems(config)
    if problems:
        raise Unprocessable({f"config.{name}": text for name, text in problems.items()})
    secret = set(secret_fields(channel))
    given = {name: value for name, value in config.items() if value is not None and value != ""}
    return (
        {name: value for name, value in given.items() if name not in secret},
        {name: value for name, value in given.items() if name in secret},
    )


def _sealed(values: Mapping[str, str]) -> str:
    try:
        return seal(values)
    except SealingError as exc:
        raise SecretsUnavailable(f"secret fields cannot be stored: {exc}") from None


def _opened(destination: Destination) -> dict[str, str]:
    try:
        return unseal(destination.sealed_secrets)
    except SealingError as exc:
        raise SecretsUnavailable(
            f"the secret fields of destination {destination.name!r} cannot be read: {exc}; add the key that sealed "
            "them to CERTCTL_SECRETS_KEYS, or remove the destination and create it again"
        ) from None


def create_destination(
    *, name: str, channel: str, config: Mapping[str, Any], enabled: bool = True, description: str = "", actor: Actor
) -> Destination:
    """A new destination of `channel` called `name` (a removed one of that name comes back with this
    configuration). Raises InvalidInput, DestinationExists, SecretsUnavailable."""
    problems: dict[str, str] = {}
    name_problem = destination_name_problem(name) if isinstance(name, str) else "must be a string"
    if name_problem:
        problems["name"] = name_problem
    if channel not in Channel.values:
        problems["channel"] = f"unknown channel {channel!r}; expected one of {', '.join(Channel.values)}"
    description_problem = _description_problem(description)
    if description_problem:
        problems["description"] = description_problem
    if problems:
        raise InvalidInput(problems)
    plain, secrets = _checked(channel, config)
    sealed = _sealed(secrets)
    now = timezone.now()
    with transaction.atomic():
        Destination.objects.ensure_environment()
        existing = Destination.objects.select_for_update().filter(name=name).first()
        if existing is not None and existing.deleted_at is None:
            raise DestinationExists(name)
        destination = Destination(
            name=name, channel=channel, config=plain, sealed_secrets=sealed, enabled=enabled,
            description=description, created_at=now, updated_at=now,
        )
        try:
            with transaction.atomic():
                destination.save(force_update=existing is not None, force_insert=existing is None)
        except IntegrityError:
            raise DestinationExists(name) from None  # created by another request since the read above
        flags = [*(["enabled"] if not enabled else []), *(["description"] if description else [])]
        fields = sorted([*plain, *secrets, *flags])
        detail = {"channel": channel, "fields": fields, "revived": existing is not None}
        _audit(name, ConfigurationActionKind.CREATE, actor, detail)
        ConfigVersion.objects.bump()
    refresh_stored_secrets()
    log.info("destination %s (%s) created by %s via %s", name, channel, actor.name, actor.source)
    return destination


def update_destination(
    name: str, *, config: Mapping[str, Any] | None = None, enabled: bool | None = None,
    description: str | None = None, actor: Actor,
) -> Destination:
    """Change a stored destination. `config` is merged into its fields: a field omitted keeps its value (a secret
    one too), one given as "" or null clears it. Changing nothing writes nothing. Raises DestinationNotFound,
    EnvironmentDestination, InvalidInput, SecretsUnavailable."""
    if description is not None:
        problem = _description_problem(description)
        if problem:
            raise InvalidInput({"description": problem})
    with transaction.atomic():
        destination = _changeable(name)
        changed: list[str] = []
        if config is not None:
            current = {**destination.config, **_opened(destination)}
            merged = {**current, **config}
            plain, secrets = _checked(destination.channel, merged)
            changed += sorted(
                field for field in {*current, *plain, *secrets} if current.get(field) != {**plain, **secrets}.get(field)
            )
            if changed:
                destination.config = plain
                destination.sealed_secrets = _sealed(secrets)
        if enabled is not None and enabled != destination.enabled:
            destination.enabled = enabled
            changed.append("enabled")
        if description is not None and description != destination.description:
            destination.description = description
            changed.append("description")
        if not changed:
            return destination
        destination.updated_at = timezone.now()
        destination.save()
        _audit(name, ConfigurationActionKind.UPDATE, actor, {"fields": changed})
        ConfigVersion.objects.bump()
    refresh_stored_secrets()
    log.info("destination %s changed by %s via %s: %s", name, actor.name, actor.source, ", ".join(changed))
    return destination


def delete_destination(name: str, *, actor: Actor) -> None:
    """Remove a stored destination from every route, then from the list: kept hidden (its history intact) when
    events name it, deleted when none does. Refused (DestinationInUse) while some of its events are unsent."""
    with transaction.atomic():
        destination = _changeable(name)
        events = NotificationEvent.objects.filter(destination=name)
        unsent = events.filter(status__in=UNSENT).count()
        if unsent:
            raise DestinationInUse(name, unsent)
        routes = sorted(destination.routes.values_list("name", flat=True))
        destination.routes.clear()
        kept = events.exists()
        if kept:
            # Hidden, not deleted: events name it. Its configuration and secrets are no longer needed.
            destination.deleted_at = destination.updated_at = timezone.now()
            destination.config, destination.sealed_secrets = {}, ""
            destination.save()
            # Its pause and breaker belong to the removed receiver: a destination created under the name starts afresh.
            DestinationState.objects.filter(destination=destination).delete()
        else:
            destination.delete()
        _audit(name, ConfigurationActionKind.DELETE, actor, {"routes": routes, "history_kept": kept})
        ConfigVersion.objects.bump()
    refresh_stored_secrets()
    log.info("destination %s removed by %s via %s", name, actor.name, actor.source)


def _test_event(destination: Destination, actor: Actor) -> NotificationEvent:
    """A message that is never stored: it exists only for the test delivery."""
    recipient = ""
    if destination.channel == Channel.EMAIL:
        config = destination_config(destination)
        recipient = str(config.get("recipients") or config.get("from_address") or "")
    return NotificationEvent(
        id=f"test-{uuid.uuid4().hex}", type=EventType.EXPIRATION_WARNING, channel=destination.channel,
        recipient=recipient, certificate_id=None, severity=Severity.INFORMATIONAL, created_at=timezone.now(),
        message=f"Test message from certctl notifications for destination {destination.name}, sent by {actor.name}. "
        "No certificate is affected.",
    )


async def _deliver(event: NotificationEvent, destination: Destination) -> Any:
    notifier = build_destination_notifier(destination)
    assert notifier is not None  # send_test checked destination_problem
    async with new_http_client() as client:
        return await send_event(event, notifier, client)


def _own_secrets(destination: Destination) -> Secrets:
    """The destination's own secret values and URLs, to hide even before the redaction cache has read them."""
    if destination.from_environment:
        return Secrets()
    url_fields = {field.name for field in notifiers()[destination.channel].fields if field.kind == "url"}
    opened = _opened(destination)
    values = tuple(value for name, value in opened.items() if name not in url_fields)
    return hidden_fragments(values, tuple(value for name, value in opened.items() if name in url_fields), ())


def send_test(name: str, *, actor: Actor) -> TestOutcome:
    """One real delivery of a test message through destination `name` (environment ones too), not stored as an
    event; audited. A destination that cannot deliver answers permanent with the reason, sending nothing."""
    destination = live_destination(name)
    problem = destination_problem(destination)
    if problem:
        outcome = TestOutcome("permanent", None, 0, problem)
    else:
        started = time.monotonic()
        result = asyncio.run(_deliver(_test_event(destination, actor), destination))
        duration_ms = round((time.monotonic() - started) * 1000)
        error = redact(result.error, _own_secrets(destination)) if result.error else ""
        kind: Literal["ok", "transient", "permanent"] = (
            "ok" if result.ok else "permanent" if result.permanent else "transient"
        )
        outcome = TestOutcome(kind, result.http_status, duration_ms, error)
    _audit(name, ConfigurationActionKind.TEST, actor, {"outcome": outcome.outcome, "http_status": outcome.http_status})
    log.info("destination %s tested by %s via %s: %s", name, actor.name, actor.source, outcome.outcome)
    return outcome


def rotate_secrets(*, actor: Actor, batch_size: int = 100) -> int:
    """Re-seal every stored destination's secrets under the first key of CERTCTL_SECRETS_KEYS, `batch_size`
    destinations per transaction, each audited. Returns how many were re-sealed. Raises SecretsUnavailable (naming
    the destination) when no key opens one: the batches before it are kept, and running again after fixing the keys
    finishes the job."""
    rotated, after = 0, ""
    while True:
        with transaction.atomic():
            batch = list(
                Destination.objects.select_for_update().exclude(sealed_secrets="").filter(name__gt=after)
                .order_by("name")[:batch_size]
            )
            for destination in batch:
                try:
                    destination.sealed_secrets = reseal(destination.sealed_secrets)
                except SealingError as exc:
                    raise SecretsUnavailable(f"destination {destination.name!r}: {exc}") from None
                destination.save(update_fields=["sealed_secrets"])
                _audit(destination.name, ConfigurationActionKind.ROTATE, actor, {"fields": ["sealed_secrets"]})
            if batch:
                ConfigVersion.objects.bump()
        if not batch:
            break
        rotated, after = rotated + len(batch), batch[-1].name
    refresh_stored_secrets()
    log.warning("secrets of %d destination(s) re-sealed by %s via %s", rotated, actor.name, actor.source)
    return rotated
