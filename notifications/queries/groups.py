"""The dead-letter queue: dead events not dismissed, grouped by channel and stored cause (notifications.causes)."""
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, Min, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from notifications.errors import InvalidInput
from notifications.filtersets import filters_given
from notifications.models import CauseKind, NotificationEvent, Status
from notifications.queries.events import filter_events


@dataclass
class FailureGroup:
    channel: str
    kind: str
    error: str
    count: int
    first_at: datetime
    last_at: datetime
    sample_id: str


def dead_letter(filters: Mapping[str, Any] | None = None) -> QuerySet[NotificationEvent]:
    """Dead events matching the list filters; without a `status`, `delivery_status` or `read` filter, only those
    not dismissed (the Dead letter tab's content)."""
    filters = filters_given(filters)
    events = filter_events(NotificationEvent.objects.filter(status=Status.DEAD), filters)
    if not {"status", "delivery_status", "read"} & set(filters):
        events = events.filter(read_at__isnull=True)
    return events


def _failed_at() -> Coalesce:
    """When a dead event failed for the last time: its latest attempt, or its creation if it never had one."""
    return Coalesce("last_attempt_at", "created_at")


class _OncePerGroup(Subquery):
    """A subquery that refers to the grouped columns only. Django would add it to the GROUP BY, which makes
    PostgreSQL run it for every row; left out, it runs once per group."""

    def get_group_by_cols(self) -> list[Any]:
        return []


def failure_groups(filters: Mapping[str, Any] | None = None) -> list[FailureGroup]:
    """The dead-letter queue grouped by channel and stored cause (notifications.causes), largest group first,
    then the one that failed last.

    One statement: a GROUP BY over the cause columns, which the dead-letter queue's index (notif_dead_cause_idx)
    holds in group order; each group's sample, the event that failed last, is the first entry of its group in that
    index. No error text is read.
    """
    events = dead_letter(filters)
    sample = (
        events.filter(channel=OuterRef("channel"), cause_kind=OuterRef("cause_kind"), cause=OuterRef("cause"))
        .order_by(_failed_at().desc(), "-created_at", "-id")
        .values("id")[:1]
    )
    rows = (
        events.order_by()
        .values("channel", "cause_kind", "cause")
        .annotate(
            count=Count("*"), first_at=Min(_failed_at()), last_at=Max(_failed_at()), sample_id=_OncePerGroup(sample)
        )
        .order_by("-count", "-last_at", "channel", "cause_kind", "cause")
    )
    # Every dead event has its cause and kind (notification_events_cause_when_dead).
    grouped: list[Mapping[str, Any]] = list(rows)
    return [
        FailureGroup(
            channel=row["channel"], kind=row["cause_kind"], error=row["cause"], count=row["count"],
            first_at=row["first_at"], last_at=row["last_at"], sample_id=row["sample_id"],
        )
        for row in grouped
    ]


def failure_group(
    channel: str, kind: str, cause: str, filters: Mapping[str, Any] | None = None
) -> QuerySet[NotificationEvent]:
    """The dead events of one failure group (as failure_groups names it) under the list filters."""
    if kind not in CauseKind.values:
        raise InvalidInput({"kind": f"unknown kind {kind!r}; expected one of {', '.join(CauseKind.values)}"})
    return dead_letter(filters).filter(channel=channel, cause_kind=kind, cause=cause)
