"""CSV export of notification events: every matching row, streamed, for the REST list (?format=csv), the UI's
"Download CSV" and `manage.py notifications list --format csv`.

The database writes every cell (times as ISO 8601 in UTC, the listed status, formula-looking text neutralised) and
the rows arrive as plain tuples from a server-side cursor, so Python does no work per cell and a million rows stream
in seconds. On PostgreSQL the count announced first (`total`, the API's X-Total-Count) and the rows are read in one
snapshot, so that a client can check that it got them all.
"""
import csv
import io
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import ExitStack
from datetime import UTC
from itertools import islice
from typing import Any

from django.db import connection, transaction
from django.db.models import Case, CharField, F, Func, QuerySet, TextField, Value, When
from django.db.models.functions import Cast, Coalesce, Concat, Left
from django.db.models.lookups import In
from django.http import StreamingHttpResponse
from django.utils import timezone

from notifications.filtersets import filters_given
from notifications.models import ListedStatus, NotificationEvent
from notifications.queries.events import LIST_ORDER, filter_events, matching_count

COLUMNS = (
    "id", "type", "certificate_id", "channel", "recipient", "message", "severity", "status", "delivery_status",
    "retry_count", "next_retry_at", "last_error", "last_attempt_at", "sent_at", "created_at", "updated_at", "read_at",
    "dedup_key", "destination", "labels",
)
# A cell starting with one of these is a formula to a spreadsheet; alert text is untrusted (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Rows per round trip to the database and per piece of the response.
CHUNK_ROWS = 2000


class UtcIsoTime(Func):
    """A time as ISO 8601 text in UTC: "2026-11-29T09:00:00.12Z" (the fraction only when there is one)."""

    output_field = TextField()
    # SQLite holds a time as the text of its naive UTC value, "2026-11-29 09:00:00.12"; PostgreSQL writes that
    # text for a time at UTC, more cheaply than to_char() formats one.
    template = "replace(%(expressions)s, ' ', 'T') || 'Z'"

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        template = "replace((%(expressions)s AT TIME ZONE 'UTC')::text, ' ', 'T') || 'Z'"
        return self.as_sql(compiler, connection, template=template, **extra_context)


def _spreadsheet_safe(name: str) -> Case:
    """The text column `name`, with an apostrophe before a leading formula character."""
    return Case(
        When(In(Left(name, 1), FORMULA_START), then=Concat(Value("'"), F(name), output_field=TextField())),
        default=F(name), output_field=TextField(),
    )


_CELLS = {
    "id": _spreadsheet_safe("id"),
    "retry_count": Cast("retry_count", TextField()),
    "certificate_id": _spreadsheet_safe("certificate_id"),
    "recipient": _spreadsheet_safe("recipient"),
    "message": _spreadsheet_safe("message"),
    "status": Case(
        When(read_at__isnull=False, then=Value(ListedStatus.READ)), default=F("status"), output_field=CharField()
    ),
    "delivery_status": F("status"),
    "last_error": _spreadsheet_safe("last_error"),
    "dedup_key": _spreadsheet_safe("dedup_key"),
    "labels": Cast("labels", TextField()),
    **{
        name: UtcIsoTime(name)
        for name in ("next_retry_at", "last_attempt_at", "sent_at", "created_at", "updated_at", "read_at")
    },
}
# Text, never NULL: the csv module writes strings fastest (an empty cell is an empty string either way).
CELLS = tuple(Coalesce(_CELLS.get(name, F(name)), Value(""), output_field=TextField()) for name in COLUMNS)


class CsvExport:
    """The events `filters` select (the list filters, notifications.filtersets), newest first, as CSV.

    `total` is how many rows follow the header. Iterating yields the header, then pieces of CHUNK_ROWS rows;
    `on_rows` hears how many rows each piece held. close() (StreamingHttpResponse calls it, also when the client
    went away) ends the read. Bad filters raise InvalidInput before anything is read.
    """

    def __init__(self, filters: Mapping[str, str], on_rows: Callable[[int], None] | None = None):
        filters = filters_given(filters)
        events = filter_events(NotificationEvent.objects.all(), filters).order_by(*LIST_ORDER)
        with ExitStack() as snapshot:
            # SQLite gets no transaction: there it would take the write lock (transaction_mode IMMEDIATE) and hold
            # up every writer for the length of the export.
            if connection.vendor == "postgresql" and not connection.in_atomic_block:
                snapshot.enter_context(transaction.atomic())
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            self.total = matching_count(filters, events)
            self._snapshot = snapshot.pop_all()
        self._pieces = _pieces(events, on_rows)

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        self._pieces.close()
        self._snapshot.close()

    def __enter__(self) -> "CsvExport":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._pieces.close()
        self._snapshot.__exit__(*exc_info)


def _pieces(events: QuerySet[NotificationEvent], on_rows: Callable[[int], None] | None) -> Generator[str, None, None]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    yield buffer.getvalue()
    rows = events.values_list(*CELLS).iterator(chunk_size=CHUNK_ROWS)
    while chunk := list(islice(rows, CHUNK_ROWS)):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(chunk)
        if on_rows is not None:
            on_rows(len(chunk))
        yield buffer.getvalue()


def csv_response(export: CsvExport, name: str = "notifications") -> StreamingHttpResponse:
    stamp = timezone.now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(export, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    response["X-Total-Count"] = str(export.total)
    return response
