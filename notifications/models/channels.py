"""Per-channel state shared by every worker: the circuit breaker and the maintenance pause, and who paused what."""
from django.db import models
from django.db.models import Q
from django.utils import timezone

from notifications.models.events import Channel, one_of


class ChannelState(models.Model):
    """A channel's circuit breaker and maintenance pause, shared by every worker on every host.

    Closed: deliveries flow. Open (notifications.engine.breaker): the failure rate over the last
    CERTCTL_CHANNEL_BREAKER_WINDOW reached CERTCTL_CHANNEL_BREAKER_FAILURE_RATE over at least
    CERTCTL_CHANNEL_BREAKER_MIN_ATTEMPTS attempts, or CERTCTL_CHANNEL_BREAKER_FAILURES consecutive transient
    failures over at least CERTCTL_CHANNEL_BREAKER_MIN_EVENTS distinct events came with no success within the
    window; the channel's events wait, spending no retries, and one due event is tried every
    CERTCTL_CHANNEL_BREAKER_PROBE (next_probe_at). Paused: an operator holds the channel's events until resumed.
    A row exists once a channel has failed or been paused.
    """

    channel = models.CharField(primary_key=True, max_length=16, choices=Channel.choices)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # The distinct events of the current run of failures, up to CERTCTL_CHANNEL_BREAKER_MIN_EVENTS of them.
    failing_events = models.JSONField(default=list)
    # The window: counts of the bucket that started at window_started_at and of the one before it (successes
    # only while the window holds a failure), and the last success (within a tenth of the window).
    window_started_at = models.DateTimeField(null=True, blank=True)
    window_successes = models.PositiveIntegerField(default=0)
    window_failures = models.PositiveIntegerField(default=0)
    previous_window_successes = models.PositiveIntegerField(default=0)
    previous_window_failures = models.PositiveIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    next_probe_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        db_table = "notification_channel_states"
        constraints = [
            models.CheckConstraint(
                condition=one_of("channel", Channel), name="notification_channel_state_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(opened_at__isnull=True) | Q(next_probe_at__isnull=False),
                name="notification_channel_state_open_has_probe",
            ),
            models.CheckConstraint(
                condition=Q(window_started_at__isnull=False)
                | Q(window_successes=0, window_failures=0, previous_window_successes=0, previous_window_failures=0),
                name="notification_channel_state_counts_have_window",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel}: {self.state}"

    @property
    def state(self) -> str:
        if self.paused_at:
            return ChannelCondition.PAUSED
        return ChannelCondition.OPEN if self.opened_at else ChannelCondition.CLOSED


class ChannelCondition(models.TextChoices):
    CLOSED = "closed"
    OPEN = "open"
    PAUSED = "paused"


class ChannelActionKind(models.TextChoices):
    PAUSE = "pause"
    RESUME = "resume"


class ChannelAction(models.Model):
    """Who paused or resumed a channel, how and when."""

    channel = models.CharField(max_length=16, choices=Channel.choices)
    action = models.CharField(max_length=8, choices=ChannelActionKind.choices)
    actor = models.CharField(max_length=150)
    source = models.CharField(max_length=16, help_text="api, ui, admin, cli or mcp")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "notification_channel_actions"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=one_of("action", ChannelActionKind), name="notification_channel_action_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.channel}"
