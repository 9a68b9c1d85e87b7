"""Per-destination state shared by every worker: the circuit breaker and the maintenance pause.

Who paused or resumed a destination is audited as a ConfigurationAction (notifications.models.destinations).
"""
from django.db import models
from django.db.models import Q

from notifications.models.destinations import Destination


class DestinationState(models.Model):
    """A destination's circuit breaker and maintenance pause, shared by every worker on every host.

    Closed: deliveries flow. Open (notifications.engine.breaker): the failure rate over the last
    CERTCTL_CHANNEL_BREAKER_WINDOW reached CERTCTL_CHANNEL_BREAKER_FAILURE_RATE over at least
    CERTCTL_CHANNEL_BREAKER_MIN_ATTEMPTS attempts, or CERTCTL_CHANNEL_BREAKER_FAILURES consecutive transient
    failures over at least CERTCTL_CHANNEL_BREAKER_MIN_EVENTS distinct events came with no success within the
    window; the destination's events wait, spending no retries, and one due event is tried every
    CERTCTL_CHANNEL_BREAKER_PROBE (next_probe_at). Paused: an operator holds the destination's events until resumed.
    A row exists once a destination has failed or been paused.
    """

    destination = models.OneToOneField(
        Destination, primary_key=True, on_delete=models.CASCADE, db_column="destination", related_name="state"
    )
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
        db_table = "notification_destination_states"
        constraints = [
            models.CheckConstraint(
                condition=Q(opened_at__isnull=True) | Q(next_probe_at__isnull=False),
                name="notification_destination_state_open_has_probe",
            ),
            models.CheckConstraint(
                condition=Q(window_started_at__isnull=False)
                | Q(window_successes=0, window_failures=0, previous_window_successes=0, previous_window_failures=0),
                name="notification_destination_state_counts_have_window",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.destination_id}: {self.state}"

    @property
    def state(self) -> str:
        if self.paused_at:
            return DestinationCondition.PAUSED
        return DestinationCondition.OPEN if self.opened_at else DestinationCondition.CLOSED


class DestinationCondition(models.TextChoices):
    CLOSED = "closed"
    OPEN = "open"
    PAUSED = "paused"
