"""CSV export of notification events: every matching row, streamed, for the REST list (?format=csv), the UI's
"Download CSV" and `manage.py notifications list --format csv`."""
import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from notifications.models import ListedStatus, NotificationEvent

COLUMNS = (
    "id", "type", "certificate_id", "channel", "recipient", "message", "severity", "status", "delivery_status",
    "retry_count", "next_retry_at", "last_error", "last_attempt_at", "sent_at", "created_at", "updated_at", "read_at",
    "dedup_key",
)
_STORED = tuple(name for name in COLUMNS if name not in ("status", "delivery_status")) + ("status",)
# A cell starting with one of these is a formula to a spreadsheet; alert text is untrusted (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """A file whose write returns the line, so that csv.writer can feed a streaming response."""

    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_lines(events: QuerySet[NotificationEvent]) -> Iterator[str]:
    """The header, then one line per event in the queryset's order, read in chunks (.iterator())."""
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    for row in events.values(*_STORED).iterator(chunk_size=2000):
        row["delivery_status"] = row["status"]
        row["status"] = ListedStatus.READ if row["read_at"] else row["status"]
        yield writer.writerow([_cell(row[name]) for name in COLUMNS])


def csv_response(lines: Iterable[str], name: str = "notifications") -> StreamingHttpResponse:
    stamp = timezone.now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response
