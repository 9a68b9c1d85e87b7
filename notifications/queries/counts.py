"""How many events there are per channel, delivery status and read state, without counting a year of history.

On PostgreSQL the triggers of migration 0007 keep notification_counts exact in the transaction of every change
(notifications.engine.upkeep folds them); reading sums a few dozen rows. On SQLite, the embedded single-host default,
the events are counted directly.
"""
from collections.abc import Mapping

from notifications.models import Group, ListedStatus, NotificationCount, NotificationEvent

# The list filters a count can answer; any other (type, certificate_id) needs the events themselves.
COUNTABLE_FILTERS = frozenset({"status", "delivery_status", "channel", "read"})


def by_group() -> dict[Group, int]:
    """{(channel, status, unread): events}, groups with no events left out."""
    if not NotificationCount.objects.maintained():
        return NotificationEvent.objects.count_by_group()
    return NotificationCount.objects.by_group()


def matching(filters: Mapping[str, str], counts: Mapping[Group, int] | None = None) -> int | None:
    """How many events the list filters select (the REST API's meaning, as queries.events.filter_events), or None when
    a filter other than status, delivery_status, channel and read takes part. Values must be valid already."""
    if not set(filters) <= COUNTABLE_FILTERS:
        return None
    counts = by_group() if counts is None else counts
    total = 0
    for (channel, status, unread), n in counts.items():
        if "channel" in filters and filters["channel"] != channel:
            continue
        if "delivery_status" in filters and filters["delivery_status"] != status:
            continue
        if "read" in filters and (filters["read"] == "false") != unread:
            continue
        if "status" in filters:
            wanted = filters["status"]
            if wanted == ListedStatus.READ and unread:
                continue
            if wanted != ListedStatus.READ and (not unread or wanted != status):
                continue
        total += n
    return total
