import re
import secrets
import time

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_event_id():
    """`notif-` + a ULID: 48-bit millisecond time then 80 random bits, so ids sort by creation."""
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "notif-" + "".join(reversed(chars))


class EventType(models.TextChoices):
    EXPIRATION_WARNING = "ExpirationWarning", "Expiration warning"
    RENEWAL_SUCCESS = "RenewalSuccess", "Renewal succeeded"
    RENEWAL_FAILURE = "RenewalFailure", "Renewal failed"
    DEPLOYMENT_SUCCESS = "DeploymentSuccess", "Deployment succeeded"
    DEPLOYMENT_FAILURE = "DeploymentFailure", "Deployment failed"
    POLICY_VIOLATION = "PolicyViolation", "Policy violation"
    REVOCATION = "Revocation", "Revocation"


class Channel(models.TextChoices):
    EMAIL = "Email"
    WEBHOOK = "Webhook"
    SLACK = "Slack"
    TEAMS = "Teams"
    PAGERDUTY = "PagerDuty"
    OPSGENIE = "OpsGenie"


class Status(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"


class ListedStatus(models.TextChoices):
    """`status` as the REST API and MCP show it, certctl's view: "read" once acknowledged, else the delivery state."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"
    READ = "read"


class Severity(models.TextChoices):
    INFORMATIONAL = "informational"
    WARNING = "warning"
    CRITICAL = "critical"


class CauseKind(models.TextChoices):
    """Whether a dead event's final failure was permanent (the receiver or the configuration refused it) or
    transient (its retries ran out)."""

    PERMANENT = "permanent"
    TRANSIENT = "transient"


# The longest stored cause (notifications.causes), "…" included.
CAUSE_LENGTH = 240

# The one rule for event ids, whoever chooses them (the API, the CLI, an import): they travel in URL paths, so
# letters, digits and . _ ~ : - only, starting with a letter or digit (never "." or ".."), at most 64.
EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~:-]{0,63}$"
_EVENT_ID = re.compile(EVENT_ID_PATTERN)
# Ids that are paths of their own in the REST API (/notifications/requeue) or the web UI (/notifications/requeue-group/).
RESERVED_EVENT_IDS = frozenset({
    "requeue", "read", "requeue-selected", "requeue-matching", "dismiss-selected", "dismiss-matching", "requeue-group",
    "dismiss-group",
})
EVENT_ID_RULE = "1 to 64 letters, digits or . _ ~ : -, starting with a letter or digit"


def event_id_problem(value: str) -> str | None:
    """Why `value` cannot be an event id, or None when it can."""
    if not _EVENT_ID.fullmatch(value):
        return f"must be {EVENT_ID_RULE} (it becomes part of URLs)"
    if value in RESERVED_EVENT_IDS:
        return f"{value!r} is reserved (a path of the API or the web UI); choose another id"
    return None


def _in(field, choices):
    return Q(**{f"{field}__in": choices.values})


class NotificationEvent(models.Model):
    id = models.CharField(primary_key=True, max_length=64, default=new_event_id)
    type = models.CharField(max_length=32, choices=EventType.choices)
    certificate_id = models.CharField(max_length=255, null=True, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    recipient = models.CharField(max_length=1024)
    message = models.TextField()
    severity = models.CharField(max_length=16, choices=Severity.choices, null=True, blank=True)
    # Written only by notifications.services. The database defaults let rows inserted by plain SQL with certctl's
    # columns only (its tests, data migrations) arrive as pending events.
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING, db_default=Status.PENDING)
    retry_count = models.PositiveIntegerField(default=0, db_default=0, help_text="Failed delivery attempts so far.")
    # The number of the latest NotificationAttempt (0: none yet), kept here so that recording a result needs
    # no MAX() over the attempts; it counts across requeues, as attempt numbers do.
    attempt_count = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Delivery attempts ever made, across requeues."
    )
    next_retry_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(null=True, blank=True)
    # When the latest attempt finished, kept here (by the delivery engine) so that "failed since …" filters
    # read one indexed column instead of the attempts table.
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # A plain default, not auto_now_add, so that an import from certctl keeps the original creation times.
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())
    dedup_key = models.CharField(max_length=255, null=True, blank=True)
    # The delivery lease: a worker owns the event until claimed_until, proven by claim_token. Neither is
    # indexed, so that a claim updates its rows in place (HOT) instead of adding an entry to every index.
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, null=True, blank=True)
    # A dead event's cause: its last error normalised once, when it went dead (notifications.causes), so that the
    # dead-letter groups are one indexed GROUP BY; and whether that failure was permanent. Set exactly while the
    # event is dead (a CHECK below): the engine and the import set them, a requeue clears them.
    cause = models.CharField(max_length=CAUSE_LENGTH, null=True, blank=True)
    cause_kind = models.CharField(max_length=9, choices=CauseKind.choices, null=True, blank=True)

    class Meta:
        db_table = "notification_events"
        ordering = ["-created_at", "-id"]
        constraints = [
            # Partial: most events have no key, and an index entry per event would cost every status change.
            models.UniqueConstraint(
                fields=["dedup_key"], condition=Q(dedup_key__isnull=False), name="notification_events_dedup_key_unique"
            ),
            models.CheckConstraint(condition=_in("status", Status), name="notification_events_status_valid"),
            models.CheckConstraint(condition=_in("type", EventType), name="notification_events_type_valid"),
            models.CheckConstraint(condition=_in("channel", Channel), name="notification_events_channel_valid"),
            models.CheckConstraint(
                condition=Q(severity__isnull=True) | _in("severity", Severity),
                name="notification_events_severity_valid",
            ),
            models.CheckConstraint(
                condition=Q(next_retry_at__isnull=True) | Q(status=Status.FAILED),
                name="notification_events_next_retry_only_when_failed",
            ),
            models.CheckConstraint(
                condition=Q(claimed_until__isnull=True, claim_token__isnull=True)
                | Q(claimed_until__isnull=False, claim_token__isnull=False),
                name="notification_events_lease_complete",
            ),
            models.CheckConstraint(
                condition=~Q(status=Status.SENT) | Q(sent_at__isnull=False),
                name="notification_events_sent_has_sent_at",
            ),
            models.CheckConstraint(
                condition=Q(cause_kind__isnull=True) | _in("cause_kind", CauseKind), name="notification_events_cause_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status=Status.DEAD, cause__isnull=False, cause_kind__isnull=False)
                | (~Q(status=Status.DEAD) & Q(cause__isnull=True, cause_kind__isnull=True)),
                name="notification_events_cause_when_dead",
            ),
        ]
        # Each index costs every change of status (bulk requeue, the engine's outcomes): only those a read needs.
        indexes = [
            # Both claims read their partial index in the claim's ORDER BY, so a claim of n rows reads n entries.
            # Only failed events have a next_retry_at (the CHECK above): the retry claim asks for
            # next_retry_at alone, which PostgreSQL estimates well, so it walks this index rather than sorting.
            models.Index(
                fields=["next_retry_at", "id"],
                name="notif_retry_sweep_idx",
                condition=Q(next_retry_at__isnull=False),
            ),
            models.Index(fields=["created_at", "id"], name="notif_pending_idx", condition=Q(status="pending")),
            models.Index(fields=["-created_at", "-id"], name="notif_created_idx"),
            # With read_at, a page of a status list (certctl's status means unread) is found in the index
            # alone, however deep the page: the rows are read for that page only.
            models.Index(fields=["status", "-created_at", "-id"], include=["read_at"], name="notif_status_created_idx"),
            # Retention: the expired sent events, oldest first (notifications.retention).
            models.Index(fields=["sent_at", "id"], name="notif_sent_at_idx", condition=Q(status="sent")),
            models.Index(fields=["type", "-created_at"], name="notif_type_created_idx"),
            models.Index(fields=["certificate_id"], name="notif_certificate_idx"),
            models.Index(fields=["-last_attempt_at"], name="notif_last_attempt_idx", condition=Q(last_attempt_at__isnull=False)),
            # The dead-letter groups (services.failure_groups): the dead events not dismissed, by cause; within a
            # cause the latest failure first, so that a group's sample is the first entry. Dismissed events leave
            # it, so it holds the queue operators triage, not the history of dismissals.
            models.Index(
                "channel", "cause_kind", "cause", Coalesce("last_attempt_at", "created_at").desc(), F("created_at").desc(),
                F("id").desc(), name="notif_dead_cause_idx", condition=Q(status="dead", read_at__isnull=True),
            ),
        ]

    def __str__(self):
        return f"{self.id} {self.type} via {self.channel} ({self.status})"

    @property
    def listed_status(self) -> str:
        return ListedStatus.READ if self.read_at else self.status

    @property
    def subject(self):
        return event_subject(self.type, self.certificate_id)


_SUBJECTS = {
    EventType.EXPIRATION_WARNING: "Certificate expiring",
    EventType.RENEWAL_SUCCESS: "Certificate renewed",
    EventType.RENEWAL_FAILURE: "Certificate renewal failed",
    EventType.DEPLOYMENT_SUCCESS: "Certificate deployed",
    EventType.DEPLOYMENT_FAILURE: "Certificate deployment failed",
    EventType.POLICY_VIOLATION: "Certificate policy violation",
    EventType.REVOCATION: "Certificate revoked",
}


def event_subject(event_type, certificate_id):
    title = _SUBJECTS.get(event_type, str(event_type))
    return f"{title}: {certificate_id}" if certificate_id else title


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
            models.CheckConstraint(condition=_in("outcome", AttemptOutcome), name="notification_attempt_outcome_valid"),
        ]
        indexes = [models.Index(fields=["started_at", "outcome"], name="notif_attempt_time_idx")]

    def __str__(self):
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
            models.CheckConstraint(condition=_in("action", ActionKind), name="notification_action_kind_valid")
        ]

    def __str__(self):
        return f"{self.actor} {self.action} {self.event_id}"


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

    def __str__(self):
        return f"{self.kind} pass at {self.finished_at}: {self.claimed} events in {self.duration_seconds:.3f}s"


class ChannelState(models.Model):
    """A channel's circuit breaker and maintenance pause, shared by every worker on every host.

    Closed: deliveries flow. Open (notifications.breaker): the failure rate over the last
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
            models.CheckConstraint(condition=_in("channel", Channel), name="notification_channel_state_channel_valid"),
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

    def __str__(self):
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
            models.CheckConstraint(condition=_in("action", ChannelActionKind), name="notification_channel_action_valid"),
        ]

    def __str__(self):
        return f"{self.actor} {self.action} {self.channel}"


class DeliveryKick(models.Model):
    """One row: whether a "deliver what is pending" task is queued and has not started yet.

    Creates and requeues hand work to the cluster through it, so that a burst queues one task, not one per
    event (notifications.dispatch).
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "notification_delivery_kick"
        constraints = [models.CheckConstraint(condition=Q(id=1), name="notification_delivery_kick_single_row")]

    def __str__(self):
        return f"delivery kick queued at {self.queued_at}" if self.queued_at else "no delivery kick queued"


class DeliveryTotal(models.Model):
    """Attempts that started before MetricsFold.attempts_folded_before, summed per channel and outcome.

    /metrics adds the attempts started since then, so that a scrape reads recent rows only, not all history.
    """

    channel = models.CharField(max_length=16, choices=Channel.choices)
    outcome = models.CharField(max_length=24, choices=AttemptOutcome.choices)
    attempts = models.PositiveBigIntegerField(default=0)
    dead_lettered = models.PositiveBigIntegerField(default=0, help_text="Attempts that moved their event to dead.")
    duration_ms_sum = models.PositiveBigIntegerField(default=0)
    # Cumulative counts of attempts at or under each of notifications.metrics.DURATION_BUCKETS_MS.
    duration_buckets = models.JSONField(default=list)

    class Meta:
        db_table = "notification_delivery_totals"
        constraints = [
            models.UniqueConstraint(fields=["channel", "outcome"], name="notification_delivery_total_unique"),
        ]

    def __str__(self):
        return f"{self.channel} {self.outcome}: {self.attempts}"


class MetricsFold(models.Model):
    """One row: how far attempts have been folded into DeliveryTotal, and the lock that keeps folds one at a time."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    attempts_folded_before = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "notification_metrics_fold"

    def __str__(self):
        return f"attempts folded before {self.attempts_folded_before}"


class NotificationCount(models.Model):
    """Events per (channel, status, unread), as rows of deltas whose sum is the count.

    On PostgreSQL, triggers on notification_events append one row per group for each statement that creates,
    changes or deletes events, in that statement's transaction, so every path (services, the engine, plain SQL,
    the retention purge) keeps the counts exact; appending, never updating, keeps concurrent writers from
    queueing on one hot row. notifications.counts folds the rows into one per group now and then and reads
    them instead of counting a history of millions of events.
    """

    id = models.BigAutoField(primary_key=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.CharField(max_length=8, choices=Status.choices)
    unread = models.BooleanField()
    events = models.BigIntegerField()

    class Meta:
        db_table = "notification_counts"

    def __str__(self):
        return f"{self.channel} {self.status} {'unread' if self.unread else 'read'}: {self.events:+d}"
