"""Copy certctl's notification_events rows into this service (`manage.py notifications import-certctl`).

certctl keeps one `status` for delivery and acknowledgement alike; here they are apart (DESIGN §5 "Read and dismiss").
A row keeps its id, times, counters and errors. Its status maps as follows:
- pending, failed, dead: the same state and schedule, so that delivery carries on where certctl left it (a failed row
  that certctl never scheduled, its fault 1, is due at once);
- sent: sent, with sent_at (certctl's created_at when it recorded none);
- read: read_at set, plus the delivery state the other columns prove: sent when sent_at is set, otherwise dead, with
  a last_error saying it was acknowledged in certctl before delivery (certctl would never have sent it).
A dead row gets its cause (notifications.causes): transient, certctl having given up after its retries, or permanent
for one read before delivery. Rows whose id is already here are left alone, so the import can be run again. A row
that breaks a rule a create must keep (operations.events.validate_event_input: the id rule, the column limits, the
message size) is refused with its reason.

The source database is hostile input too: what the import reports of it has its control characters escaped and is
cut to a length, and the password of --database-url never appears in a message.
"""
import contextlib
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import psycopg
from django.db import transaction
from django.utils import timezone
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from notifications import causes
from notifications.errors import InvalidInput
from notifications.models import Channel, EventType, NotificationEvent, Status
from notifications.operations.events import validate_event_input
from notifications.redaction import REDACTED, escape_controls

log = logging.getLogger("notifications.certctl_import")

SOURCE_TABLE = "notification_events"
# certctl's columns (migrations 000001, 000016, 000017); older certctl databases lack the later ones.
SOURCE_COLUMNS = (
    "id", "type", "certificate_id", "channel", "recipient", "message", "sent_at", "status", "error", "created_at",
    "retry_count", "next_retry_at", "last_error",
)
REQUIRED_COLUMNS = {"id", "type", "channel", "recipient", "message", "status"}
CERTCTL_READ = "read"
READ_BEFORE_DELIVERY = (
    "acknowledged (marked read) in certctl before it was delivered, so certctl would never have sent it; "
    "requeue it to send it now"
)

# How much of a value from the source a report line quotes.
SHOWN_LENGTH = 120
URL_FORM = (
    "write it as postgres://user:password@host:5432/dbname, with special characters in the password percent-encoded "
    "(a space as %20, % as %25, @ as %40, / as %2F)"
)


class SourceError(Exception):
    """The certctl database cannot be read: a message fit to show, without the password."""


def shown(text: object, limit: int = SHOWN_LENGTH) -> str:
    """A value from the source as a report may print it: one line, control characters escaped, at most `limit`
    characters."""
    line = escape_controls(str(text))
    return line if len(line) <= limit else line[: limit - 1] + "…"


# password=… in a key=value conninfo or a URL's query string; quoted values may hold spaces.
_PASSWORD_PARAMETER = re.compile(r"(?:^|[\s?&])password\s*=\s*('(?:[^'\\]|\\.)*'?|[^\s&]*)")
_WORD_CHARACTER = "A-Za-z0-9"


def password_forms(database_url: str) -> list[str]:
    """Every text in which the password of `database_url` could reach a message, longest first: as libpq reads
    it, as written (percent-encoded or not, even where libpq cannot parse the URL), and its pieces between @ and /
    (libpq ends the user part at the first of them)."""
    forms: set[str] = set()
    with contextlib.suppress(psycopg.ProgrammingError, UnicodeError):
        forms.add(str(conninfo_to_dict(database_url).get("password") or ""))
    scheme_end = database_url.find("://")
    if scheme_end >= 0:
        rest = database_url[scheme_end + 3 :]
        userinfo = rest[: max(rest.rfind("@"), 0)]
        if ":" in userinfo:
            written = userinfo.split(":", 1)[1]
            forms.update({written, unquote(written), *re.split("[@/]", written)})
    for match in _PASSWORD_PARAMETER.finditer(database_url):
        value = match.group(1)
        forms.update({value, value.strip("'"), unquote(value)})
    return sorted((form for form in forms if form), key=len, reverse=True)


def without_password(message: str, database_url: str) -> str:
    """`message` with every form of the password replaced by [redacted]; a form under four characters only where
    it stands alone (not inside a word), so that the message stays readable."""
    for form in password_forms(database_url):
        if len(form) >= 4:
            message = message.replace(form, REDACTED)
        else:
            message = re.sub(rf"(?<![{_WORD_CHARACTER}]){re.escape(form)}(?![{_WORD_CHARACTER}])", REDACTED, message)
    return message


@dataclass
class ImportReport:
    rows: int = 0
    imported: Counter[str] = field(default_factory=Counter)
    marked_read: int = 0
    read_before_delivery: int = 0
    already_present: int = 0
    # (id, reason) of each row refused, as shown().
    invalid: list[tuple[str, str]] = field(default_factory=list)

    @property
    def imported_total(self) -> int:
        return sum(self.imported.values())


def describe_source(database_url: str) -> str:
    """host:port/dbname of a connection URL, never its password."""
    try:
        parts = conninfo_to_dict(database_url)
    except (psycopg.ProgrammingError, UnicodeError):
        return "the given --database-url"
    # A password with @ or / in it, not percent-encoded, ends up in the host or database name.
    where = f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"
    return shown(without_password(where, database_url))


_CHANNELS = {value.lower(): value for value in Channel.values}
_TYPES = {value.lower(): value for value in EventType.values}


def convert(row: dict[str, Any], now: datetime) -> NotificationEvent | str:
    """One certctl row as an unsaved event, or the reason it cannot be imported."""
    if row["id"] is None:
        return "id is empty"
    channel = _CHANNELS.get(str(row["channel"] or "").lower(), str(row["channel"] or ""))
    event_type = _TYPES.get(str(row["type"] or "").lower(), str(row["type"] or ""))
    fields: dict[str, Any] = dict(
        id=str(row["id"]), type=event_type, channel=channel, certificate_id=row.get("certificate_id") or None,
        recipient=row["recipient"] or "", message=row["message"] or "",
    )
    try:
        validate_event_input(
            type=event_type, channel=channel, recipient=fields["recipient"], message=fields["message"],
            certificate_id=fields["certificate_id"], event_id=fields["id"],
        )
    except InvalidInput as exc:
        return exc.message
    source_status = str(row["status"] or "").lower()
    created_at = row.get("created_at") or now
    last_error = row.get("last_error") or row.get("error")
    fields.update(created_at=created_at, retry_count=max(row.get("retry_count") or 0, 0), last_error=last_error)
    if source_status == Status.PENDING:
        fields.update(status=Status.PENDING)
    elif source_status == Status.DEAD:
        cause, cause_kind = causes.dead_cause(last_error, permanent=False)
        fields.update(status=Status.DEAD, cause=cause, cause_kind=cause_kind)
    elif source_status == Status.FAILED:
        fields.update(status=Status.FAILED, next_retry_at=row.get("next_retry_at") or now)
    elif source_status == Status.SENT:
        fields.update(status=Status.SENT, sent_at=row.get("sent_at") or created_at)
    elif source_status == CERTCTL_READ:
        fields.update(read_at=now)
        if row.get("sent_at"):
            fields.update(status=Status.SENT, sent_at=row["sent_at"])
        else:
            never_sent = READ_BEFORE_DELIVERY + (f". Last error in certctl: {last_error}" if last_error else "")
            cause, cause_kind = causes.dead_cause(never_sent, permanent=True)
            fields.update(status=Status.DEAD, last_error=never_sent, cause=cause, cause_kind=cause_kind)
    else:
        return f"unknown status {row['status']!r}; expected one of pending, sent, failed, dead, read"
    return NotificationEvent(**fields)


def _select(connection: psycopg.Connection) -> tuple[sql.Composed, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = %s AND table_schema = ANY(current_schemas(false))",
            [SOURCE_TABLE],
        )
        present = {name for (name,) in cursor.fetchall()}
        if not present:
            raise SourceError(f"{SOURCE_TABLE} does not exist there: is this certctl's database?")
        missing = REQUIRED_COLUMNS - present
        if missing:
            raise SourceError(f"{SOURCE_TABLE} there lacks {', '.join(sorted(missing))}: it is not certctl's table")
        cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(SOURCE_TABLE)))
        counted = cursor.fetchone()
        total = counted[0] if counted else 0
    columns = [
        sql.Identifier(name) if name in present else sql.SQL("NULL AS {}").format(sql.Identifier(name))
        for name in SOURCE_COLUMNS
    ]
    order = [sql.Identifier(name) for name in ("created_at", "id") if name in present]
    query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
        sql.SQL(", ").join(columns), sql.Identifier(SOURCE_TABLE), sql.SQL(", ").join(order)
    )
    return query, total


def _store(batch: list[dict[str, Any]], report: ImportReport, now: datetime, dry_run: bool) -> None:
    ids = [str(row["id"]) for row in batch]
    present = set(NotificationEvent.objects.filter(id__in=ids).values_list("id", flat=True))
    new = []
    for row in batch:
        if str(row["id"]) in present:
            report.already_present += 1
            continue
        event = convert(row, now)
        if isinstance(event, str):
            report.invalid.append((shown(row["id"]), shown(event)))
            continue
        present.add(event.id)  # a repeated id within the source counts once
        new.append(event)
        report.imported[event.status] += 1
        if event.read_at:
            report.marked_read += 1
            if event.status == Status.DEAD and str(row["status"]).lower() == CERTCTL_READ:
                report.read_before_delivery += 1
    if new and not dry_run:
        with transaction.atomic():
            NotificationEvent.objects.bulk_create(new, ignore_conflicts=True)


def import_certctl(
    database_url: str, *, dry_run: bool = False, batch_size: int = 1000, now: datetime | None = None,
    on_total: Callable[[int], None] = lambda total: None, on_progress: Callable[[int], None] = lambda rows: None,
) -> ImportReport:
    """Read certctl's notification_events at `database_url` (read-only) and import the rows not yet here."""
    now = now or timezone.now()
    report = ImportReport()
    source = describe_source(database_url)
    try:
        conninfo_to_dict(database_url)
    except (psycopg.ProgrammingError, UnicodeError) as exc:
        reason = shown(" ".join(without_password(str(exc), database_url).split()), limit=1000)
        raise SourceError(f"--database-url is not a valid connection URL ({reason}); {URL_FORM}") from None
    try:
        with psycopg.connect(database_url, connect_timeout=10, autocommit=False) as connection:
            connection.read_only = True
            query, total = _select(connection)
            on_total(total)
            # A server-side cursor: a large table is read in batches, never whole.
            with connection.cursor(name="certctl_import", row_factory=dict_row) as cursor:
                cursor.itersize = batch_size
                cursor.execute(query)
                for batch in _batches(cursor, batch_size):
                    _store(batch, report, now, dry_run)
                    report.rows += len(batch)
                    on_progress(len(batch))
    except psycopg.Error as exc:
        reason = shown(" ".join(without_password(str(exc), database_url).split()), limit=1000)
        raise SourceError(f"cannot read certctl's database at {source}: {reason}") from None
    log.info(
        "certctl import from %s%s: %d rows, %d imported, %d already present, %d invalid",
        source, " (dry run)" if dry_run else "", report.rows, report.imported_total, report.already_present,
        len(report.invalid),
    )
    return report


def _batches(cursor: psycopg.ServerCursor[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    while batch := cursor.fetchmany(size):
        yield batch
