"""Notification events: the choices they are made of, the id rule, their table and what the database guarantees,
and the few statements every layer shares (which events are due, releasing a lease, a requeue's reset)."""
import re
import secrets
import time
from collections.abc import Mapping
from datetime import datetime

from django.db import connections, models
from django.db.models import Count, F, Q
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_event_id() -> str:
    """`notif-` + a ULID: 48-bit millisecond time then 80 random bits, so ids sort by creation."""
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "notif-" + "".join(reversed(chars))


# Labels: a small string map routes match on. Keys are short identifiers; values one line of text.
LABEL_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
_LABEL_KEY = re.compile(LABEL_KEY_PATTERN)
MAX_LABELS = 20
MAX_LABEL_VALUE = 255


def labels_problem(labels: object) -> str | None:
    """Why `labels` cannot be an event's labels, or None when they can."""
    if not isinstance(labels, Mapping):
        return 'must be an object of strings, e.g. {"team": "payments"}'
    if len(labels) > MAX_LABELS:
        return f"has {len(labels)} labels; at most {MAX_LABELS} are allowed"
    for key, value in labels.items():
        if not isinstance(key, str) or not _LABEL_KEY.fullmatch(key):
            return (
                f"label {str(key)[:70]!r}: keys are 1 to 63 letters, digits, _ . or -, starting with a letter or digit"
            )
        if not isinstance(value, str):
            return f"label {key!r}: the value must be a string"
        if len(value) > MAX_LABEL_VALUE or any(ch in value for ch in "\r\n\x00"):
            return f"label {key!r}: the value must be one line of at most {MAX_LABEL_VALUE} characters"
    return None


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
# Ids that are paths of their own in the REST API (/notifications/requeue) or the web UI
# (/notifications/requeue-group/).
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


def one_of(field: str, choices: type[models.TextChoices]) -> Q:
    """The CHECK condition that `field` holds one of `choices`."""
    return Q(**{f"{field}__in": choices.values})


# (channel, delivery status, unread): the groups events are counted in (notifications.models.NotificationCount).
Group = tuple[str, str, bool]

# A value an UPDATE sets a column of notification_events to.
ColumnValue = str | int | datetime | None

# Releasing a lease: the event goes back to whoever claims it next. The one statement of it, used wherever a lease
# ends (a pass giving back claims it will not start, the engine recording an outcome, a requeue), on every backend.
LEASE_RELEASED: dict[str, ColumnValue] = {"claimed_until": None, "claim_token": None}

# A requeue starts a new delivery cycle: pending with fresh counters, unread again, no dead-letter cause; its lease
# is released too (LEASE_RELEASED). Both of requeue's statements (the ORM's on SQLite, PostgreSQL's set-based one)
# are made from this.
REQUEUE_RESET: dict[str, ColumnValue] = {
    "status": Status.PENDING, "retry_count": 0, "next_retry_at": None, "last_error": None, "read_at": None,
    "cause": None, "cause_kind": None,
}


def set_clause(changes: Mapping[str, ColumnValue], connection_alias: str = "default") -> tuple[str, list[ColumnValue]]:
    """`changes` ({field: value} of NotificationEvent) as the SET list of an UPDATE: ("col = %s, …", values)."""
    quote = connections[connection_alias].ops.quote_name
    columns = [quote(_column(name)) for name in changes]
    return ", ".join(f"{column} = %s" for column in columns), list(changes.values())


def _column(name: str) -> str:
    """The column of NotificationEvent's field `name`."""
    field = NotificationEvent._meta.get_field(name)
    if not isinstance(field, models.Field) or field.column is None:
        raise ValueError(f"{name} is not a column of notification_events")
    return field.column


class EventQuerySet(models.QuerySet["NotificationEvent"]):
    def unleased(self, now: datetime) -> "EventQuerySet":
        """The events no worker holds at `now`: never claimed, given back, or with their lease run out."""
        return self.filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))

    def due(self, kind: str, now: datetime) -> "EventQuerySet":
        """The events a pass of `kind` may claim at `now`: pending ones, or failed ones whose retry time has come."""
        if kind == "pending":
            return self.unleased(now).filter(status=Status.PENDING)
        if kind == "retry":
            # Failed ones: only they have a next_retry_at (notification_events_next_retry_only_when_failed).
            return self.unleased(now).filter(next_retry_at__lte=now)
        raise ValueError(kind)

    def count_by_group(self) -> dict[Group, int]:
        """{(channel, status, unread): events} counted from the events themselves; empty groups left out."""
        rows = (
            self.order_by()
            .values("channel", "status")
            .annotate(
                unread=Count("id", filter=Q(read_at__isnull=True)), read=Count("id", filter=Q(read_at__isnull=False))
            )
        )
        counts: dict[Group, int] = {}
        for row in rows:
            for unread, n in ((True, row["unread"]), (False, row["read"])):
                if n:
                    counts[(row["channel"], row["status"], unread)] = n
        return counts


class NotificationEvent(models.Model):
    id = models.CharField(primary_key=True, max_length=64, default=new_event_id)
    type = models.CharField(max_length=32, choices=EventType.choices)
    certificate_id = models.CharField(max_length=255, null=True, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    # The destination named when the event was created; null for one created by channel only (certctl's contract,
    # rows inserted by plain SQL), which goes to its channel's environment destination (named after the channel).
    target = models.ForeignKey(
        "notifications.Destination", on_delete=models.PROTECT, null=True, blank=True, db_column="target",
        related_name="+", db_index=False,
    )
    # Where the event goes: its target, else its channel's environment destination. Computed by the database, so
    # that every reader filters, groups and counts one indexed column.
    destination = models.GeneratedField(
        expression=Coalesce("target", "channel"), output_field=models.CharField(max_length=64), db_persist=True
    )
    # A small string map ({"team": "payments", "env": "prod"}) that routes match on and lists filter by.
    labels = models.JSONField(default=dict, blank=True, db_default=models.Value({}, models.JSONField()))
    recipient = models.CharField(max_length=1024)
    message = models.TextField()
    severity = models.CharField(max_length=16, choices=Severity.choices, null=True, blank=True)
    # Written only by notifications.operations and the engine. The database defaults let rows inserted by plain SQL
    # with certctl's columns only (its tests, data migrations) arrive as pending events.
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

    objects = EventQuerySet.as_manager()

    class Meta:
        db_table = "notification_events"
        ordering = ["-created_at", "-id"]
        constraints = [
            # Partial: most events have no key, and an index entry per event would cost every status change.
            models.UniqueConstraint(
                fields=["destination", "dedup_key"], condition=Q(dedup_key__isnull=False),
                name="notification_events_dedup_key_unique",
            ),
            models.CheckConstraint(condition=one_of("status", Status), name="notification_events_status_valid"),
            models.CheckConstraint(condition=one_of("type", EventType), name="notification_events_type_valid"),
            models.CheckConstraint(condition=one_of("channel", Channel), name="notification_events_channel_valid"),
            models.CheckConstraint(
                condition=Q(severity__isnull=True) | one_of("severity", Severity),
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
                condition=Q(cause_kind__isnull=True) | one_of("cause_kind", CauseKind),
                name="notification_events_cause_kind_valid",
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
            # Retention: the expired sent events, oldest first (notifications.engine.upkeep).
            models.Index(fields=["sent_at", "id"], name="notif_sent_at_idx", condition=Q(status="sent")),
            models.Index(fields=["type", "-created_at"], name="notif_type_created_idx"),
            models.Index(fields=["certificate_id"], name="notif_certificate_idx"),
            models.Index(fields=["destination", "-created_at", "-id"], name="notif_destination_created_idx"),
            models.Index(
                fields=["-last_attempt_at"], name="notif_last_attempt_idx", condition=Q(last_attempt_at__isnull=False)
            ),
            # The dead-letter groups (queries.groups.failure_groups): the dead events not dismissed, by cause; within a
            # cause the latest failure first, so that a group's sample is the first entry. Dismissed events leave
            # it, so it holds the queue operators triage, not the history of dismissals.
            models.Index(
                "channel", "cause_kind", "cause", Coalesce("last_attempt_at", "created_at").desc(),
                F("created_at").desc(), F("id").desc(), name="notif_dead_cause_idx",
                condition=Q(status="dead", read_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.type} via {self.channel} ({self.status})"

    @property
    def listed_status(self) -> str:
        return ListedStatus.READ if self.read_at else self.status

    @property
    def subject(self) -> str:
        return event_subject(self.type, self.certificate_id)


_SUBJECTS: dict[str, str] = {
    EventType.EXPIRATION_WARNING: "Certificate expiring",
    EventType.RENEWAL_SUCCESS: "Certificate renewed",
    EventType.RENEWAL_FAILURE: "Certificate renewal failed",
    EventType.DEPLOYMENT_SUCCESS: "Certificate deployed",
    EventType.DEPLOYMENT_FAILURE: "Certificate deployment failed",
    EventType.POLICY_VIOLATION: "Certificate policy violation",
    EventType.REVOCATION: "Certificate revoked",
}


def event_subject(event_type: str, certificate_id: str | None) -> str:
    title = _SUBJECTS.get(event_type, str(event_type))
    return f"{title}: {certificate_id}" if certificate_id else title
