"""The one filter set of notification events.

The REST list and CSV export, the web UI's list and its "… all matching" actions, the bulk requeue and bulk read
operations, the CLI and the MCP tools all select events through NotificationFilterSet, so that a filter means the
same everywhere (NetBox's pattern: one FilterSet per model, used by API views, UI views and bulk actions).
"""
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact
from django_filters.fields import IsoDateTimeField

from notifications.models import (
    CAUSE_LENGTH,
    CauseKind,
    Channel,
    EventQuerySet,
    EventType,
    ListedStatus,
    NotificationEvent,
    Status,
)

# What the time filters accept, as the OpenAPI schema states it (days up to 28 keep every match a real date).
ISO_TIME_PATTERN = (
    r"^([1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-](0[0-9]|1[0-3]):?[0-5][0-9])?)?)?$"
)
# The years a time filter accepts, as written (the years ISO_TIME_PATTERN allows); the same time in UTC must exist
# too (9999-12-31T23:00-05:00 does not), since every backend compares times in UTC.
TIME_YEARS = (1000, 9999)
TIME_RANGE_ERROR = f"must be a time in the years {TIME_YEARS[0]} to {TIME_YEARS[1]}, also in UTC"
TIME_HELP = (
    "ISO 8601, e.g. 2026-11-29T09:00:00Z or 2026-11-29 (midnight UTC); a time without offset is UTC; "
    f"years {TIME_YEARS[0]} to {TIME_YEARS[1]}."
)


def in_time_range(moment: datetime) -> bool:
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return False
    return TIME_YEARS[0] <= moment.year <= TIME_YEARS[1]


class TimeField(IsoDateTimeField):
    """An ISO 8601 time within TIME_YEARS, for the filters here and the UI's filter form alike."""

    default_error_messages = {"out_of_range": TIME_RANGE_ERROR}

    def to_python(self, value: str | datetime | date | None) -> datetime | None:
        moment = super().to_python(value)
        if moment is not None and not in_time_range(moment):
            raise ValidationError(self.error_messages["out_of_range"], code="out_of_range")
        return moment


class TimeFilter(django_filters.IsoDateTimeFilter):
    field_class = TimeField


def status_condition(value: str) -> Q:
    """certctl's status filter: "read" means acknowledged; a delivery state means that state and not yet acknowledged
    (in certctl a read event no longer has its old status)."""
    if value == ListedStatus.READ:
        return Q(read_at__isnull=False)
    return Q(status=value, read_at__isnull=True)


def _choice_filter(
    name: str, choices: type[models.TextChoices], help_text: str | None = None, *, field_name: str | None = None,
    method: str | None = None,
) -> django_filters.ChoiceFilter:
    expected = ", ".join(choices.values)
    return django_filters.ChoiceFilter(
        field_name=field_name,
        method=method,
        choices=[(value, value) for value in choices.values],
        help_text=help_text or f"Only events with this {name}.",
        error_messages={"invalid_choice": f"unknown {name} %(value)r; expected one of {expected}"},
    )


def _time_filter(field_name: str, lookup_expr: str, help_text: str) -> TimeFilter:
    return TimeFilter(
        field_name=field_name, lookup_expr=lookup_expr, help_text=f"{help_text} {TIME_HELP}",
        error_messages={"invalid": "must be an ISO 8601 time such as 2026-11-29T09:00:00Z"},
    )


class NotificationFilterSet(django_filters.FilterSet):
    status = _choice_filter(
        "status", ListedStatus, method="filter_status",
        help_text='As certctl filters: "read" = events an operator acknowledged; pending, sent, failed or dead = '
        "events in that delivery state that are not yet read (a read event shows status \"read\").",
    )
    delivery_status = _choice_filter(
        "delivery_status", Status, field_name="status",
        help_text="Only events in this delivery state, read or not "
        "(dead = the whole dead-letter queue, dismissed included).",
    )
    channel = _choice_filter("channel", Channel)
    destination = django_filters.CharFilter(
        max_length=64, help_text="Only events of this destination (a channel's own destination is named after it).",
        error_messages={"max_length": "must be at most 64 characters"},
    )
    label = django_filters.CharFilter(
        method="filter_label", max_length=320,
        help_text="Only events with this label: key=value (team=payments), or a key alone for any value.",
        error_messages={"max_length": "must be at most 320 characters"},
    )
    type = _choice_filter("type", EventType)
    certificate_id = django_filters.CharFilter(
        max_length=255, help_text="Only events about this certificate.",
        error_messages={"max_length": "must be at most 255 characters"},
    )
    read = django_filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        method="filter_read",
        help_text="true: only events an operator marked read; false: only unread ones.",
        error_messages={"invalid_choice": "read must be true or false, not %(value)r"},
    )
    created_after = _time_filter("created_at", "gte", "Only events created at or after this time.")
    created_before = _time_filter("created_at", "lt", "Only events created before this time.")
    failed_after = _time_filter(
        "last_attempt_at", "gte", "Only failed or dead events whose latest attempt was at or after this time."
    )
    failed_before = _time_filter(
        "last_attempt_at", "lt", "Only failed or dead events whose latest attempt was before this time."
    )
    error = django_filters.CharFilter(
        field_name="last_error", lookup_expr="icontains", max_length=200,
        help_text="Only events whose last error contains this text, in any letter case.",
        error_messages={"max_length": "must be at most 200 characters"},
    )
    cause = django_filters.CharFilter(
        max_length=CAUSE_LENGTH,
        help_text="Only dead events of this cause, exactly as the dead-letter groups name it (a group's `error`).",
        error_messages={"max_length": f"must be at most {CAUSE_LENGTH} characters"},
    )
    cause_kind = _choice_filter(
        "cause_kind", CauseKind,
        help_text="Only dead events whose final failure was of this kind: permanent (refused) or transient "
        "(retries ran out).",
    )
    q = django_filters.CharFilter(
        method="filter_text", max_length=200,
        help_text="Text in the message or recipient (any letter case), or a notification id.",
        error_messages={"max_length": "must be at most 200 characters"},
    )

    class Meta:
        model = NotificationEvent
        fields = [
            "status", "delivery_status", "channel", "destination", "label", "type", "certificate_id", "read",
            "created_after", "created_before",
            "failed_after", "failed_before", "error", "cause", "cause_kind", "q",
        ]

    @property
    def qs(self) -> EventQuerySet:
        # django-filter types its result as any QuerySet; filtering keeps the class of the queryset it was given
        # (or of NotificationEvent's manager), which is EventQuerySet.
        return cast(EventQuerySet, super().qs)

    def filter_queryset(self, queryset: QuerySet[NotificationEvent]) -> QuerySet[NotificationEvent]:
        events = super().filter_queryset(queryset)
        if self.form.cleaned_data.get("failed_after") or self.form.cleaned_data.get("failed_before"):
            # "Failed since": the latest attempt failed, so a sent event retried within the range is not one.
            events = events.filter(status__in=(Status.FAILED, Status.DEAD))
        return events

    def filter_status(
        self, queryset: QuerySet[NotificationEvent], name: str, value: str
    ) -> QuerySet[NotificationEvent]:
        return queryset.filter(status_condition(value))

    def filter_read(self, queryset: QuerySet[NotificationEvent], name: str, value: str) -> QuerySet[NotificationEvent]:
        return queryset.filter(read_at__isnull=(value == "false"))

    def filter_label(self, queryset: QuerySet[NotificationEvent], name: str, value: str) -> QuerySet[NotificationEvent]:
        key, equals, wanted = value.partition("=")
        if not equals:
            return queryset.filter(labels__has_key=key)
        return queryset.filter(Exact(KeyTextTransform(key, "labels"), wanted))

    def filter_text(self, queryset: QuerySet[NotificationEvent], name: str, value: str) -> QuerySet[NotificationEvent]:
        return queryset.filter(Q(message__icontains=value) | Q(recipient__icontains=value) | Q(id=value))


FILTER_NAMES: tuple[str, ...] = tuple(NotificationFilterSet.base_filters)
TIME_FILTERS = ("created_after", "created_before", "failed_after", "failed_before")


def form_errors(form: forms.Form) -> dict[str, str]:
    """{field: first message}, for InvalidInput and the API's `fields`."""
    return {name: str(messages[0]) for name, messages in form.errors.items()}


def filters_given(filters: Mapping[str, Any] | None) -> dict[str, Any]:
    """The filters that were given a value: None and "" mean "no filter", in every interface."""
    return {name: value for name, value in (filters or {}).items() if value not in (None, "")}


# --- the filters as the interfaces offer them -------------------------------------

# A time filter's longest value, with room to spare (ISO_TIME_PATTERN's longest match has 32 characters).
TIME_MAX_LENGTH = 40
# The filters that select by delivery or read state; a dead-letter selection (the CLI's --all-dead, the dead-letter
# groups of the CLI and MCP) sets those itself.
STATE_FILTERS = frozenset({"status", "delivery_status", "read"})


@dataclass(frozen=True)
class FilterOption:
    """One filter of NotificationFilterSet as an interface offers it (a CLI --option, an MCP tool argument): read
    from the filter's declaration, so that adding a filter to the FilterSet adds it to every interface. Values are
    strings; the FilterSet judges them when it selects, these are hints for a parser or a schema."""

    name: str
    help: str
    choices: tuple[str, ...] = ()  # a choice filter's values
    max_length: int | None = None
    time: bool = False  # an ISO 8601 time: TIME_HELP, ISO_TIME_PATTERN, TIME_MAX_LENGTH


def filter_options(excluded: Iterable[str] = ()) -> list[FilterOption]:
    """The filters of NotificationFilterSet in declaration order, but `excluded`, read when called."""
    options = []
    for name, declared in NotificationFilterSet.base_filters.items():
        if name in excluded:
            continue
        help_text = str(declared.extra.get("help_text", ""))
        if isinstance(declared, TimeFilter):
            options.append(FilterOption(name, help_text, max_length=TIME_MAX_LENGTH, time=True))
        elif isinstance(declared, django_filters.ChoiceFilter):
            options.append(FilterOption(name, help_text, choices=tuple(str(v) for v, _ in declared.extra["choices"])))
        else:
            options.append(FilterOption(name, help_text, max_length=declared.extra.get("max_length")))
    return options
