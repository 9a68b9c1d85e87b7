"""The engine's bookkeeping: the latest passes, the delivery kick, the /metrics totals and the event counts."""
from django.db import connections, models
from django.db.models import Q, Sum

from notifications.models.events import Channel, Group, Status
from notifications.models.history import AttemptOutcome


class PassKind(models.TextChoices):
    PENDING = "pending"
    RETRY = "retry"


class LastPass(models.Model):
    """The latest pending pass and retry sweep, whichever worker or host ran them; read by /metrics."""

    kind = models.CharField(primary_key=True, max_length=8, choices=PassKind.choices)
    finished_at = models.DateTimeField()
    duration_seconds = models.FloatField()
    claimed = models.PositiveIntegerField(help_text="Events the pass claimed and delivered.")

    class Meta:
        db_table = "notification_last_passes"

    def __str__(self) -> str:
        return f"{self.kind} pass at {self.finished_at}: {self.claimed} events in {self.duration_seconds:.3f}s"


class DeliveryKick(models.Model):
    """One row: whether a "deliver what is pending" task is queued and has not started yet.

    Creates and requeues hand work to the cluster through it, so that a burst queues one task, not one per
    event (notifications.engine.dispatch).
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "notification_delivery_kick"
        constraints = [models.CheckConstraint(condition=Q(id=1), name="notification_delivery_kick_single_row")]

    def __str__(self) -> str:
        return f"delivery kick queued at {self.queued_at}" if self.queued_at else "no delivery kick queued"


class DeliveryTotal(models.Model):
    """Attempts that started before MetricsFold.attempts_folded_before, summed per destination and outcome.

    /metrics adds the attempts started since then, so that a scrape reads recent rows only, not all history.
    """

    # The destination's name (kept after the destination is removed: the counters never go down) and its channel.
    destination = models.CharField(max_length=64)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    outcome = models.CharField(max_length=24, choices=AttemptOutcome.choices)
    attempts = models.PositiveBigIntegerField(default=0)
    dead_lettered = models.PositiveBigIntegerField(default=0, help_text="Attempts that moved their event to dead.")
    duration_ms_sum = models.PositiveBigIntegerField(default=0)
    # Cumulative counts of attempts at or under each of notifications.engine.upkeep.DURATION_BUCKETS_MS.
    duration_buckets = models.JSONField(default=list)

    class Meta:
        db_table = "notification_delivery_totals"
        constraints = [
            models.UniqueConstraint(
                fields=["destination", "outcome"], name="notification_delivery_total_destination_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.destination} {self.outcome}: {self.attempts}"


class MetricsFold(models.Model):
    """One row: how far attempts have been folded into DeliveryTotal, and the lock that keeps folds one at a time."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    attempts_folded_before = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "notification_metrics_fold"

    def __str__(self) -> str:
        return f"attempts folded before {self.attempts_folded_before}"


class NotificationCountQuerySet(models.QuerySet["NotificationCount"]):
    def maintained(self) -> bool:
        """Whether the database keeps notification_counts (PostgreSQL's triggers); elsewhere events are counted."""
        return connections[self.db].vendor == "postgresql"

    def by_group(self) -> dict[Group, int]:
        """{(channel, status, unread): events} summed from the delta rows; groups with no events left out."""
        rows = self.order_by().values("channel", "status", "unread").annotate(n=Sum("events"))
        return {(row["channel"], row["status"], row["unread"]): row["n"] for row in rows if row["n"]}


class NotificationCount(models.Model):
    """Events per (channel, status, unread), as rows of deltas whose sum is the count.

    On PostgreSQL, triggers on notification_events append one row per group for each statement that creates,
    changes or deletes events, in that statement's transaction, so every path (operations, the engine, plain SQL,
    the retention purge) keeps the counts exact; appending, never updating, keeps concurrent writers from
    queueing on one hot row. notifications.engine.upkeep folds the rows into one per group now and then and reads
    them instead of counting a history of millions of events.
    """

    id = models.BigAutoField(primary_key=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.CharField(max_length=8, choices=Status.choices)
    unread = models.BooleanField()
    events = models.BigIntegerField()

    objects = NotificationCountQuerySet.as_manager()

    class Meta:
        db_table = "notification_counts"

    def __str__(self) -> str:
        return f"{self.channel} {self.status} {'unread' if self.unread else 'read'}: {self.events:+d}"
