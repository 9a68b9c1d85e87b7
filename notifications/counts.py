"""How many events there are per channel, delivery status and read state, without counting a year of history.

On PostgreSQL the triggers of migration 0005 keep notification_counts (NotificationCount) exact in the
transaction of every change; reading sums a few dozen rows. On SQLite, the embedded single-host default,
the events are counted directly.
"""
from collections.abc import Mapping
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Count, Q, Sum

from notifications.models import ListedStatus, NotificationCount, NotificationEvent

# (channel, delivery status, unread)
Group = tuple[str, str, bool]

# The list filters a count can answer; any other (type, certificate_id) needs the events themselves.
COUNTABLE_FILTERS = frozenset({"status", "delivery_status", "channel", "read"})


def maintained() -> bool:
    """Whether notification_counts is kept by the database (PostgreSQL) rather than events counted on demand."""
    return connection.vendor == "postgresql"


def count_events() -> dict[Group, int]:
    rows = (
        NotificationEvent.objects.order_by()
        .values("channel", "status")
        .annotate(unread=Count("id", filter=Q(read_at__isnull=True)), read=Count("id", filter=Q(read_at__isnull=False)))
    )
    counts: dict[Group, int] = {}
    for row in rows:
        for unread, n in ((True, row["unread"]), (False, row["read"])):
            if n:
                counts[(row["channel"], row["status"], unread)] = n
    return counts


def by_group() -> dict[Group, int]:
    """{(channel, status, unread): events}, groups with no events left out."""
    if not maintained():
        return count_events()
    rows = NotificationCount.objects.order_by().values("channel", "status", "unread").annotate(n=Sum("events"))
    return {(row["channel"], row["status"], row["unread"]): row["n"] for row in rows if row["n"]}


def matching(filters: Mapping[str, str], counts: Mapping[Group, int] | None = None) -> int | None:
    """How many events the list filters select (the REST API's meaning, as services.filter_events), or None when
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


def fold() -> int:
    """Sum the delta rows into one row per group; returns how many rows there were before."""
    if not maintained():
        return 0
    table = NotificationCount._meta.db_table
    with connection.cursor() as cursor:
        # A concurrent fold or delta is safe: rows this DELETE does not see stay, and each row is summed once.
        cursor.execute(
            f"WITH folded AS (DELETE FROM {table} RETURNING channel, status, unread, events), "
            f"summed AS (INSERT INTO {table} (channel, status, unread, events) "
            "SELECT channel, status, unread, sum(events) FROM folded GROUP BY 1, 2, 3 HAVING sum(events) <> 0) "
            "SELECT count(*) FROM folded"
        )
        folded: int = cursor.fetchone()[0]
        return folded


@dataclass(frozen=True)
class Repair:
    group: Group
    counted: int  # what notification_counts said
    actual: int  # what a recount of the events found


def recount() -> list[Repair]:
    """Replace the counts with a recount of the events; returns the groups that were wrong.

    Writes to events wait for the few hundred milliseconds this takes on a million events, so that no change
    falls between the count and the replacement.
    """
    if not maintained():
        return []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {NotificationEvent._meta.db_table} IN SHARE MODE")
        before = by_group()
        actual = count_events()
        NotificationCount.objects.all().delete()
        NotificationCount.objects.bulk_create(
            NotificationCount(channel=channel, status=status, unread=unread, events=n)
            for (channel, status, unread), n in actual.items()
        )
    return [
        Repair(group, before.get(group, 0), actual.get(group, 0))
        for group in sorted(set(before) | set(actual))
        if before.get(group, 0) != actual.get(group, 0)
    ]

