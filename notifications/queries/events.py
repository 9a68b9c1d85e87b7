"""Reading events: the list filters, one page of a list with its total, one event with its history, the events a
bulk action selects and what it would do to them (its dry run)."""
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.paginator import Page as DjangoPage
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.functional import cached_property

from notifications.errors import EventNotFound, InvalidInput
from notifications.filtersets import NotificationFilterSet, filters_given, form_errors
from notifications.models import EventQuerySet, NotificationAttempt, NotificationEvent, OperatorAction, Status
from notifications.queries import counts

# Newest first, then by id, so that pages are stable.
LIST_ORDER = ("-created_at", "-id")
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500
MAX_BULK_IDS = 10_000
# How many ids of the events it would change a dry run names.
SAMPLE_SIZE = 20
EVENT_ID_MAX_LENGTH: int = NotificationEvent._meta.get_field("id").max_length or 64
REQUEUEABLE = (Status.FAILED, Status.DEAD)


def impossible_id(event_id: str) -> bool:
    """True for ids no event can have; PostgreSQL refuses a NUL even in a lookup (DataError, a 500)."""
    return "\x00" in event_id or len(event_id) > EVENT_ID_MAX_LENGTH


def get_event(event_id: str) -> NotificationEvent:
    if impossible_id(event_id):
        raise EventNotFound(event_id)
    try:
        return NotificationEvent.objects.get(id=event_id)
    except NotificationEvent.DoesNotExist:
        raise EventNotFound(event_id) from None


@dataclass(frozen=True)
class EventHistory:
    """An event with every delivery attempt (oldest first) and every operator action on it."""

    event: NotificationEvent
    attempts: list[NotificationAttempt]
    operator_actions: list[OperatorAction]


def event_with_history(event_id: str) -> EventHistory:
    event = get_event(event_id)
    return EventHistory(
        event, list(event.attempts.order_by("number")), list(event.operator_actions.order_by("created_at", "id"))
    )


def retry_display(event: NotificationEvent) -> str:
    """"Retry n/max" as operators read it: a dead event after five failures shows 5/5."""
    return f"Retry {event.retry_count}/{settings.CERTCTL_NOTIFICATION_MAX_ATTEMPTS}"


def filter_events(events: EventQuerySet, filters: Mapping[str, Any]) -> EventQuerySet:
    """Apply list filters (notifications.filtersets, the same set as every list): unknown names or bad values raise
    InvalidInput naming the field."""
    known = NotificationFilterSet.base_filters
    unknown = sorted(set(filters) - set(known))
    if unknown:
        raise InvalidInput({name: f"not a notification filter; use {', '.join(known)}" for name in unknown})
    filterset = NotificationFilterSet(data={name: str(value) for name, value in filters.items()}, queryset=events)
    if not filterset.is_valid():
        raise InvalidInput(form_errors(filterset.form))
    qs: EventQuerySet = filterset.qs
    return qs


# --- pages --------------------------------------------------------------------


def matching_count(filters: Mapping[str, Any], events: EventQuerySet) -> int:
    """How many `events` (the events `filters` select) there are: from the stored counts when the filters are
    status, delivery_status, channel and read only, so that a total is not a count(*) of a year of history."""
    total = counts.matching(filters_given(filters))
    return events.count() if total is None else total


def page_of(queryset: QuerySet[Any], offset: int, limit: int) -> list[Any]:
    """queryset[offset:offset + limit], paying the offset in the index only: the page's keys first (an
    index-only scan skips the rows before it), then the rows of those keys alone."""
    keys = list(queryset.values_list("pk", flat=True)[offset : offset + limit])
    return list(queryset.filter(pk__in=keys)) if keys else []


if TYPE_CHECKING:
    _Paginator = Paginator[NotificationEvent]
else:  # Django's Paginator is generic in its stubs only.
    _Paginator = Paginator


class EventPaginator(_Paginator):
    """The events `filters` select, newest first, in pages of `per_page`: the count from the stored counts
    (matching_count), a page read through the index (page_of). Django's paginator, for the UI's page links;
    list_page is the same for the API, the CLI and MCP."""

    def __init__(self, filters: Mapping[str, Any] | None, per_page: int):
        self.filters = filters_given(filters)
        self.events = filter_events(NotificationEvent.objects.all(), self.filters).order_by(*LIST_ORDER)
        super().__init__(self.events, per_page)

    @cached_property
    def count(self) -> int:
        return matching_count(self.filters, self.events)

    def rows(self, offset: int) -> list[NotificationEvent]:
        """The page of events from `offset`; none past the end."""
        return page_of(self.events, offset, self.per_page) if offset < self.count else []

    def page(self, number: int | str) -> "DjangoPage[NotificationEvent]":
        number = self.validate_number(number)
        return DjangoPage(self.rows((number - 1) * self.per_page), number, self)


def count_events(filters: Mapping[str, Any] | None) -> int:
    """How many events `filters` select, as list_page counts them (what the UI's "… all matching" would consider)."""
    filters = filters_given(filters)
    return matching_count(filters, filter_events(NotificationEvent.objects.all(), filters))


@dataclass(frozen=True)
class Page:
    rows: list[NotificationEvent]
    total: int  # every match, not just this page
    page: int
    per_page: int


def list_page(filters: Mapping[str, Any] | None, page: int = 1, per_page: int = DEFAULT_PER_PAGE) -> Page:
    """One page of the events `filters` select, newest first, with the total of every match: the one read of the
    notification list behind the API, the CLI and MCP. `per_page` is clamped to 1..MAX_PER_PAGE; a page past the
    end is empty, with the real total."""
    pages = EventPaginator(filters, min(max(per_page, 1), MAX_PER_PAGE))
    if page < 1:
        raise InvalidInput({"page": f"must be 1 or more, got {page}"})
    return Page(pages.rows((page - 1) * pages.per_page), pages.count, page, pages.per_page)


# --- bulk selections and their dry runs ------------------------------------------


def selection(ids: Iterable[str] | None, filters: Mapping[str, Any] | None) -> tuple[EventQuerySet, int | None]:
    """The events a bulk action names, by ids or by filters, and how many ids it named (None for filters)."""
    if ids is not None:
        ids = list(dict.fromkeys(str(i) for i in ids))
        if len(ids) > MAX_BULK_IDS:
            raise InvalidInput({"ids": f"{len(ids)} ids given; at most {MAX_BULK_IDS} per call"})
        # Impossible ids are unknown ids: skipped, like any other.
        return NotificationEvent.objects.filter(id__in=[i for i in ids if not impossible_id(i)]), len(ids)
    filters = filters_given(filters)
    if not filters:
        known = ", ".join(NotificationFilterSet.base_filters)
        raise InvalidInput({"ids": f"give a list of ids or at least one filter ({known})"})
    return filter_events(NotificationEvent.objects.all(), filters), None


def requeueable(events: EventQuerySet, now: datetime) -> EventQuerySet:
    """Of `events`, those a requeue moves: failed or dead, and not being delivered right now."""
    return events.unleased(now).filter(status__in=REQUEUEABLE)


def unread(events: EventQuerySet) -> EventQuerySet:
    return events.filter(read_at__isnull=True)


@dataclass(frozen=True)
class BulkPreview:
    """What a bulk action would do: how many events it would change, how many it would skip, some of their ids."""

    would_change: int
    skipped: int
    sample: list[str]


def _preview(chosen: EventQuerySet, considered: int | None, eligible: EventQuerySet) -> BulkPreview:
    count = eligible.count()
    if considered is None:
        considered = chosen.count()
    sample = list(eligible.order_by(*LIST_ORDER).values_list("id", flat=True)[:SAMPLE_SIZE])
    return BulkPreview(would_change=count, skipped=max(considered - count, 0), sample=sample)


def preview_requeue(
    ids: Iterable[str] | None = None, filters: Mapping[str, Any] | None = None, now: datetime | None = None
) -> BulkPreview:
    """A dry run of requeue_events: the same selection and conditions, nothing changes."""
    chosen, considered = selection(ids, filters)
    return _preview(chosen, considered, requeueable(chosen, now or timezone.now()))


def preview_mark_read(ids: Iterable[str] | None = None, filters: Mapping[str, Any] | None = None) -> BulkPreview:
    """A dry run of mark_read_events: the same selection and conditions, nothing changes."""
    chosen, considered = selection(ids, filters)
    return _preview(chosen, considered, unread(chosen))
