"""An event's history: every delivery attempt, and every change an operator made by hand."""
from django.db import models

from notifications.models.events import NotificationEvent, Status, one_of


class AttemptOutcome(models.TextChoices):
    SUCCESS = "success"
    TRANSIENT_FAILURE = "transient_failure"
    PERMANENT_FAILURE = "permanent_failure"


class NotificationAttempt(models.Model):
    event = models.ForeignKey(NotificationEvent, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField(help_text="1 for the event's first attempt ever; counts across requeues.")
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    outcome = models.CharField(max_length=24, choices=AttemptOutcome.choices)
    error = models.TextField(blank=True, default="")
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    resulting_status = models.CharField(max_length=8, choices=Status.choices, null=True, blank=True)

    class Meta:
        db_table = "notification_attempts"
        ordering = ["event", "number"]
        constraints = [
            models.UniqueConstraint(fields=["event", "number"], name="notification_attempt_number_unique"),
            models.CheckConstraint(
                condition=one_of("outcome", AttemptOutcome), name="notification_attempt_outcome_valid"
            ),
        ]
        indexes = [models.Index(fields=["started_at", "outcome"], name="notif_attempt_time_idx")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.event_id}: {self.outcome}"


class ActionKind(models.TextChoices):
    REQUEUE = "requeue"
    MARK_READ = "mark_read"


class OperatorAction(models.Model):
    """Who changed an event by hand, how and when. Survives requeues."""

    event = models.ForeignKey(NotificationEvent, on_delete=models.CASCADE, related_name="operator_actions")
    action = models.CharField(max_length=16, choices=ActionKind.choices)
    actor = models.CharField(max_length=150)
    source = models.CharField(max_length=16, help_text="api, ui, admin, cli or mcp")
    bulk = models.BooleanField(default=False)
    previous_status = models.CharField(max_length=8, choices=Status.choices, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "notification_operator_actions"
        ordering = ["event", "created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=one_of("action", ActionKind), name="notification_action_kind_valid")
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.event_id}"
