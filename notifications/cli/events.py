"""`notifications list`, `show` and `send`: reading notifications and creating one."""
import sys
from typing import Any

from django.core.management.base import CommandError
from tabulate import tabulate
from tqdm import tqdm

from notifications.cli.common import (
    CHANNEL_CHOICE,
    LIST_HINT,
    NOT_FOUND_OR_REFUSED,
    TYPE_CHOICE,
    USAGE,
    Subcommands,
    add_filter_options,
    as_json,
    choice,
    counter,
    delivery_hint,
    filter_problem,
    given_filters,
    int_between,
    shorten,
    status_with_marker,
    when,
)
from notifications.errors import EventNotFound, InvalidInput
from notifications.models import Severity, Status
from notifications.operations.events import create_event
from notifications.queries.events import DEFAULT_PER_PAGE, MAX_PER_PAGE, event_with_history, list_page, retry_display
from notifications.queries.export import CsvExport
from notifications.serializers import EventPageSerializer, event_with_history_data


class EventCommands(Subcommands):
    """list, show, send"""

    @staticmethod
    def add_parsers(commands: Any) -> None:
        listing = commands.add_parser("list", help="list notifications, newest first")
        add_filter_options(listing)
        listing.add_argument("--page", type=int_between(1), default=1)
        listing.add_argument(
            "--per-page", type=int_between(1, MAX_PER_PAGE), default=DEFAULT_PER_PAGE,
            help=f"rows per page, 1..{MAX_PER_PAGE} (default {DEFAULT_PER_PAGE})",
        )
        listing.add_argument(
            "--format", choices=("table", "json", "csv"), default="table",
            help='json: {"data","total","page","per_page"} as the REST API; csv: every matching row (no paging)',
        )
        listing.add_argument(
            "--json", action="store_const", const="json", dest="format", help="the same as --format json"
        )

        show = commands.add_parser("show", help="one notification with its attempts and operator actions")
        show.add_argument("id")
        show.add_argument("--json", action="store_true", help="print JSON instead of text")

        send = commands.add_parser("send", help="create a notification; it is delivered like any other")
        send.add_argument("--type", required=True, **TYPE_CHOICE)
        send.add_argument("--channel", required=True, **CHANNEL_CHOICE)
        send.add_argument("--recipient", required=True, help="e-mail address or channel-specific target")
        send.add_argument("--message", required=True)
        send.add_argument("--certificate-id")
        send.add_argument("--dedup-key", help="a second send with the same key returns the first notification")
        send.add_argument("--severity", **choice(Severity.values))

    # --- list -----------------------------------------------------------------

    def handle_list(self, *, page: int, per_page: int, format: str, **options: Any) -> None:
        filters = given_filters(options)
        if format == "csv":
            self.write_csv(filters)
            return
        try:
            listed = list_page(filters, page, per_page)
        except InvalidInput as exc:
            raise filter_problem(exc) from None
        if format == "json":
            self.out(as_json(EventPageSerializer(listed).data))
            return
        events, total = listed.rows, listed.total
        if not total:
            self.out(
                "no notifications match" if filters
                else "no notifications yet; create one with `manage.py notifications send`"
            )
            return
        pages = -(-total // per_page)
        if not events:
            self.out(f"page {page} is past the end: {total} notifications make {pages} page(s) of {per_page}")
            return
        rows = [
            (
                e.id, status_with_marker(e), retry_display(e), e.type, e.channel, shorten(e.recipient, 30),
                when(e.created_at), when(e.next_retry_at), shorten(e.message, 40), shorten(e.last_error, 60),
            )
            for e in events
        ]
        headers = (
            "ID", "Status", "Retry", "Type", "Channel", "Recipient", "Created", "Next retry", "Message", "Last error"
        )
        self.out(tabulate(rows, headers=headers))
        offset = (page - 1) * per_page
        footer = f"\n{offset + 1}-{offset + len(events)} of {total} (page {page} of {pages})"
        if page < pages:
            footer += f"; next: --page {page + 1}"
        self.out(footer)

    def write_csv(self, filters: dict[str, str]) -> None:
        """Every matching row, streamed; a progress bar on stderr when it is a terminal (tqdm's default)."""
        bar = tqdm(desc="notifications", unit="row", file=sys.stderr, disable=None)
        try:
            with CsvExport(filters, on_rows=counter(bar)) as export:
                bar.reset(total=export.total)
                for piece in export:
                    self.stdout.write(piece, ending="")
        except InvalidInput as exc:
            raise filter_problem(exc) from None
        finally:
            bar.close()

    # --- show -----------------------------------------------------------------

    def handle_show(self, *, id: str, json: bool, **_: Any) -> None:
        try:
            history = event_with_history(id)
        except EventNotFound as exc:
            raise CommandError(f"{exc.message}; {LIST_HINT}", returncode=NOT_FOUND_OR_REFUSED) from None
        if json:
            self.out(as_json(event_with_history_data(history)))
            return
        event, attempts, actions = history.event, history.attempts, history.operator_actions
        fields = [
            ("ID", event.id),
            ("Subject", event.subject),
            ("Type", event.type),
            ("Channel", event.channel),
            ("Recipient", event.recipient),
            ("Certificate", event.certificate_id or ""),
            ("Severity", event.severity or ""),
            ("Status", f"{status_with_marker(event)} ({retry_display(event)})"),
            ("Next retry", when(event.next_retry_at)),
            ("Last error", event.last_error or ""),
            ("Sent", when(event.sent_at)),
            ("Read", when(event.read_at)),
            ("Created", when(event.created_at)),
            ("Updated", when(event.updated_at)),
            ("Dedup key", event.dedup_key or ""),
            ("Message", event.message),
        ]
        self.out(tabulate(fields, tablefmt="plain", maxcolwidths=[None, 100]))
        self.out(f"\nAttempts ({len(attempts)})")
        if attempts:
            attempt_rows = [
                (
                    a.number, when(a.started_at), f"{a.duration_ms} ms", a.outcome, a.http_status or "",
                    a.resulting_status or "lease lost", a.error,
                )
                for a in attempts
            ]
            headers = ("#", "Started", "Took", "Outcome", "HTTP", "Became", "Error")
            self.out(tabulate(attempt_rows, headers=headers, maxcolwidths=[None] * 6 + [70]))
        else:
            self.out("none yet")
        self.out(f"\nOperator actions ({len(actions)})")
        if actions:
            rows = [
                (when(a.created_at), a.action, a.actor, a.source, "yes" if a.bulk else "", a.previous_status or "")
                for a in actions
            ]
            self.out(tabulate(rows, headers=("When", "Action", "Actor", "Source", "Bulk", "Was")))
        else:
            self.out("none")
        if event.status == Status.DEAD:
            dismiss = "" if event.read_at else f", or dismiss it: `manage.py notifications read {event.id}`"
            self.out(f"\nDead: fix the cause above, then `manage.py notifications requeue {event.id}`{dismiss}.")
        elif event.status == Status.FAILED:
            self.out(
                f"\nNext attempt at {when(event.next_retry_at)}; `manage.py notifications sweep` runs due retries now."
            )

    # --- send -----------------------------------------------------------------

    def handle_send(
        self, *, type: str, channel: str, recipient: str, message: str, certificate_id: str | None,
        dedup_key: str | None, severity: str | None, **_: Any,
    ) -> None:
        try:
            event, created = create_event(
                type=type, channel=channel, recipient=recipient, message=message,
                certificate_id=certificate_id, dedup_key=dedup_key, severity=severity,
            )
        except InvalidInput as exc:
            problems = "; ".join(f"--{name.replace('_', '-')} {text}" for name, text in exc.errors.items())
            raise CommandError(f"invalid input: {problems}; nothing was created", returncode=USAGE) from None
        if not created:
            self.out(
                f"notification {event.id} already exists with dedup key {event.dedup_key!r} (status {event.status}); "
                "nothing was created"
            )
            return
        created_line = f"created notification {event.id} ({event.type} via {event.channel} to {event.recipient})"
        self.out(self.style.SUCCESS(created_line))
        self.out(f"Pending: {delivery_hint('it')}; `manage.py notifications show {event.id}` shows its attempts.")
