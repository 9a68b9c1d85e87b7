"""Where alerts go and which go where: named destinations, the routes that choose them, and the audit of both.

A destination is one configured endpoint of a channel (a Slack webhook, a PagerDuty service, a Webhook receiver).
The environment variables of today define one read-only destination per channel, named after it (`Webhook`,
`Slack`, …), whose configuration is read from the settings, never stored; the rows exist so that every event names
a destination. Stored destinations keep their channel's fields in `config`, but for the secret ones, which are
encrypted together into `sealed_secrets` (notifications.sealing).
"""
import re

from django.db import models
from django.db.models import Q
from django.utils import timezone

from notifications.models.events import Channel, one_of

# Destination names travel in URL paths and metric labels: letters, digits, _ and -, starting with a letter.
DESTINATION_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
_DESTINATION_NAME = re.compile(DESTINATION_NAME_PATTERN)
DESTINATION_NAME_RULE = "1 to 64 letters, digits, _ or -, starting with a letter"


def destination_name_problem(value: str) -> str | None:
    """Why `value` cannot name a destination, or None when it can."""
    if not _DESTINATION_NAME.fullmatch(value):
        return f"must be {DESTINATION_NAME_RULE} (it becomes part of URLs and metric labels)"
    return None


class DestinationQuerySet(models.QuerySet["Destination"]):
    def ensure_environment(self) -> None:
        """Create the environment destinations that are missing (one per channel, named after it). The migration
        creates them; a test database flushed between tests has lost them, so readers that need the rows ask."""
        self.bulk_create(
            [Destination(name=channel, channel=channel, from_environment=True) for channel in Channel.values],
            ignore_conflicts=True,
        )

    def live(self) -> "DestinationQuerySet":
        """The destinations not removed."""
        return self.filter(deleted_at__isnull=True)


class Destination(models.Model):
    name = models.CharField(primary_key=True, max_length=64)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    # The channel's fields that are not secret ({field name: value}, as its notifier declares them).
    config = models.JSONField(default=dict, blank=True)
    # The secret fields, as one Fernet token over their JSON; "" when none is set.
    sealed_secrets = models.TextField(blank=True, default="")
    # Defined by the environment variables of its channel (named after it): read-only, its config from the settings.
    from_environment = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Removed by an operator while events still name it: hidden from lists and routes, its history kept; creating a
    # destination of the same name brings the row back.
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = DestinationQuerySet.as_manager()

    class Meta:
        db_table = "notification_destinations"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=one_of("channel", Channel), name="notification_destination_channel_valid"),
            # An environment destination is named after its channel, and is never stored config nor removed.
            models.CheckConstraint(
                condition=Q(from_environment=False)
                | Q(name=models.F("channel"), sealed_secrets="", deleted_at__isnull=True),
                name="notification_destination_environment_named_after_channel",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Route(models.Model):
    """One routing rule. Routes are evaluated by `position`; the first that matches an alert sends it to its
    destinations and, unless `continue_matching`, ends the evaluation. The default route (at most one) matches
    everything and is evaluated last, only when no other route matched."""

    name = models.CharField(max_length=100, unique=True)
    position = models.PositiveIntegerField()
    # {"types": [...], "severities": [...], "certificate_ids": [glob, ...], "labels": {key: value or glob}};
    # an absent or empty criterion matches everything.
    match = models.JSONField(default=dict, blank=True)
    destinations = models.ManyToManyField(
        Destination, related_name="routes", db_table="notification_route_destinations"
    )
    continue_matching = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "notification_routes"
        ordering = ["is_default", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="notification_route_one_default"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ConfigVersionQuerySet(models.QuerySet["ConfigVersion"]):
    def current(self) -> int:
        """The stored number (0 before any change)."""
        return self.filter(id=1).values_list("version", flat=True).first() or 0

    def bump(self) -> None:
        """Count one change; call it in the transaction of the change, so that readers see both or neither."""
        if not self.filter(id=1).update(version=models.F("version") + 1):
            self.bulk_create([ConfigVersion(id=1, version=1)], ignore_conflicts=True)


class ConfigVersion(models.Model):
    """One row counting changes to destinations and routes, bumped in the transaction of every change: a process
    keeps its cached destinations and routes while the number it read is still the stored one."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    version = models.PositiveBigIntegerField(default=0)

    objects = ConfigVersionQuerySet.as_manager()

    class Meta:
        db_table = "notification_config_version"
        constraints = [models.CheckConstraint(condition=Q(id=1), name="notification_config_version_single_row")]

    def __str__(self) -> str:
        return f"configuration version {self.version}"


class ConfigurationTarget(models.TextChoices):
    DESTINATION = "destination"
    ROUTE = "route"


class ConfigurationActionKind(models.TextChoices):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    PAUSE = "pause"
    RESUME = "resume"
    TEST = "test"
    REORDER = "reorder"
    ROTATE = "rotate"


class ConfigurationAction(models.Model):
    """Who changed a destination or a route, how and when: the audit of configuration, as OperatorAction is of
    events. `target` is the destination's name or the route's name at the time; `detail` says what changed (field
    names, never a secret value)."""

    target_kind = models.CharField(max_length=16, choices=ConfigurationTarget.choices)
    target = models.CharField(max_length=100)
    action = models.CharField(max_length=8, choices=ConfigurationActionKind.choices)
    actor = models.CharField(max_length=150)
    source = models.CharField(max_length=16, help_text="api, ui, admin, cli or mcp")
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "notification_configuration_actions"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=one_of("target_kind", ConfigurationTarget), name="notification_config_action_target_valid"
            ),
            models.CheckConstraint(
                condition=one_of("action", ConfigurationActionKind), name="notification_config_action_valid"
            ),
        ]
        indexes = [models.Index(fields=["target_kind", "target", "-created_at"], name="notif_config_action_idx")]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.target_kind} {self.target}"
