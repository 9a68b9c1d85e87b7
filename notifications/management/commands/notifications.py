"""`manage.py notifications …`: list, inspect, send, requeue, mark read and deliver notification events from a shell,
import them from a certctl database, purge old sent ones and repair the stored counts.

Thin over notifications.services. JSON output has the REST API's shapes (its serializers).
Exit codes: 0 ok, 1 not found or refused, 2 usage.
"""
import argparse
import getpass
import json
import os
import re
import sys
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from rest_framework import serializers
from tabulate import tabulate
from tqdm import tqdm

from certctl.config import parse_duration
from notifications import certctl_import, services
from notifications.api.filters import DEFAULT_PER_PAGE, MAX_PER_PAGE
from notifications.api.serializers import (
    ChannelSerializer,
    FailureGroupListSerializer,
    NotificationAttemptSerializer,
    NotificationEventSerializer,
    StatsSummarySerializer,
)
from notifications.engine import passes, upkeep
from notifications.engine.report import LEASE_LOST, RELEASED
from notifications.export import CsvExport
from notifications.models import CauseKind, Channel, EventType, NotificationCount, NotificationEvent, OperatorAction, Severity, Status

USAGE = 2
NOT_FOUND_OR_REFUSED = 1
LIST_HINT = "list ids with `manage.py notifications list`"


def delivery_hint(what):
    return f"the running worker (`manage.py qcluster`) delivers {what}; `manage.py notifications sweep` delivers {what} now"


class UsageParser(CommandParser):
    """Bad arguments exit 2 through call_command too, as they do from a shell (Django's default there is 1)."""

    def error(self, message):
        if self.called_from_command_line:
            super().error(message)
        raise CommandError(f"{self.prog}: {message}", returncode=USAGE)


class OperatorActionSerializer(serializers.ModelSerializer):
    class Meta:
        model = OperatorAction
        fields = ["created_at", "action", "actor", "source", "bulk", "previous_status"]


def choice_of(choices):
    """Accept a choice in any letter case (`webhook` → `Webhook`); argparse then checks it against `choices`."""
    canonical = {value.lower(): value for value in choices.values}
    return lambda text: canonical.get(text.lower(), text)


def int_between(low, high=None):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}" if high else f"{value} is less than {low}")
        return value

    return parse


def positive_duration(text: str) -> timedelta:
    try:
        value = parse_duration(text, days=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value <= timedelta(0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration; e.g. 30d, 12h")
    return value


def operator():
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry and no LOGNAME
        name = f"uid-{os.getuid()}"
    return services.Actor(name, "cli")


def shorten(text, width):
    """One line of at most `width` characters, for table cells."""
    if not text:
        return ""
    flat = re.sub(r"\s+", " ", str(text)).strip()
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def when(value):
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z") if value else ""


def status_with_marker(event: NotificationEvent) -> str:
    """The delivery state, and whether an operator read it (a read dead event is dismissed)."""
    if not event.read_at:
        return event.status
    return f"{event.status}, {'dismissed' if event.status == Status.DEAD else 'read'}"


def as_json(value):
    return json.dumps(value, indent=2, ensure_ascii=False)


# The filters every selecting subcommand shares with the REST API (notifications.filtersets), as --options.
TIME_OPTIONS = {
    "created_after": "created at or after this time",
    "created_before": "created before this time",
    "failed_after": "last attempt failed at or after this time",
    "failed_before": "last attempt failed before this time",
}
SELECTION_FILTERS = ("channel", "type", "certificate_id", *TIME_OPTIONS, "error", "cause", "cause_kind")


def option(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_selection_filters(parser: argparse.ArgumentParser, channel_choice: dict, type_choice: dict, scope: str = "") -> None:
    parser.add_argument("--channel", help=f"only this channel{scope}", **channel_choice)
    parser.add_argument("--type", help=f"only this event type{scope}", **type_choice)
    parser.add_argument("--certificate-id", help=f"only events about this certificate{scope}")
    for name, text in TIME_OPTIONS.items():
        parser.add_argument(option(name), metavar="TIME", help=f"{text}; ISO 8601, e.g. 2026-11-29T09:00:00Z (UTC if no offset){scope}")
    parser.add_argument("--error", metavar="TEXT", help=f"last error contains this text, any letter case{scope}")
    parser.add_argument("--cause", metavar="CAUSE", help=f"dead ones of exactly this cause, as `groups` shows it{scope}")
    parser.add_argument(
        "--cause-kind", choices=CauseKind.values, help=f"dead ones whose final failure was permanent or transient{scope}"
    )


def given_filters(options: dict) -> dict[str, str]:
    return {name: options[name] for name in SELECTION_FILTERS if options.get(name)}


def filter_problem(exc: services.InvalidInput) -> CommandError:
    problems = "; ".join(f"{option(name) if name != 'ids' else 'ids'} {text}" for name, text in exc.errors.items())
    return CommandError(f"invalid filter: {problems}", returncode=USAGE)


class Command(BaseCommand):
    help = "Inspect, send, requeue and deliver notification events. Exit codes: 0 ok, 1 not found or refused, 2 usage."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND", parser_class=UsageParser)
        channel_choice = dict(type=choice_of(Channel), choices=Channel.values)
        type_choice = dict(type=choice_of(EventType), choices=EventType.values)

        listing = commands.add_parser("list", help="list notifications, newest first")
        listing.add_argument("--status", type=choice_of(Status), choices=Status.values, help="only this delivery state")
        add_selection_filters(listing, channel_choice, type_choice)
        listing.add_argument("--page", type=int_between(1), default=1)
        listing.add_argument(
            "--per-page", type=int_between(1, MAX_PER_PAGE), default=DEFAULT_PER_PAGE,
            help=f"rows per page, 1..{MAX_PER_PAGE} (default {DEFAULT_PER_PAGE})",
        )
        listing.add_argument(
            "--format", choices=("table", "json", "csv"), default="table",
            help='json: {"data","total","page","per_page"} as the REST API; csv: every matching row (no paging)',
        )
        listing.add_argument("--json", action="store_const", const="json", dest="format", help="the same as --format json")

        show = commands.add_parser("show", help="one notification with its attempts and operator actions")
        show.add_argument("id")
        show.add_argument("--json", action="store_true", help="print JSON instead of text")

        send = commands.add_parser("send", help="create a notification; it is delivered like any other")
        send.add_argument("--type", required=True, **type_choice)
        send.add_argument("--channel", required=True, **channel_choice)
        send.add_argument("--recipient", required=True, help="e-mail address or channel-specific target")
        send.add_argument("--message", required=True)
        send.add_argument("--certificate-id")
        send.add_argument("--dedup-key", help="a second send with the same key returns the first notification")
        send.add_argument("--severity", type=choice_of(Severity), choices=Severity.values)

        requeue = commands.add_parser(
            "requeue", help="move failed or dead notifications back to pending",
            description="Requeue the given ids, or with --all-dead every dead notification not dismissed (the Dead letter "
            "tab's content), narrowed by the filters (e.g. --failed-after 2026-11-29T08:00:00Z recovers what died since). "
            "Dismissed dead ones are requeued by id.",
        )
        requeue.add_argument("ids", nargs="*", metavar="ID")
        requeue.add_argument("--all-dead", action="store_true", help="requeue every dead notification not dismissed")
        add_selection_filters(requeue, channel_choice, type_choice, scope=" (with --all-dead)")
        requeue.add_argument("--dry-run", action="store_true", help="change nothing: count what would be requeued")

        read = commands.add_parser(
            "read", help="mark notifications read; for dead ones this dismisses them from the dead-letter queue",
            description="Mark the given ids read, or dismiss every undismissed dead notification with --all-dead "
            "(narrowed by the filters). Reading never starts or stops a delivery.",
        )
        read.add_argument("ids", nargs="*", metavar="ID")
        read.add_argument("--all-dead", action="store_true", help="dismiss every dead notification not yet dismissed")
        add_selection_filters(read, channel_choice, type_choice, scope=" (with --all-dead)")
        read.add_argument("--dry-run", action="store_true", help="change nothing: count what would be dismissed")

        groups = commands.add_parser(
            "groups", help="the dead-letter queue grouped by cause",
            description="Dead notifications not dismissed, grouped by channel, kind (permanent or transient) and cause: "
            "the last error with ids, numbers, hex strings, UUIDs and times replaced by placeholders (an HTTP status "
            "stays). Largest group first, then the one that failed last.",
        )
        add_selection_filters(groups, channel_choice, type_choice)
        groups.add_argument("--json", action="store_true", help="print the REST API's dead-letter/groups JSON")

        importing = commands.add_parser(
            "import-certctl", help="copy notification events from a certctl PostgreSQL database",
            description="Copy certctl's notification_events rows (ids kept) into this service. Rows already here "
            "are skipped, so it can be run again. Pending and failed rows are delivered by this service's workers "
            "afterwards: stop certctl's scheduler first.",
        )
        importing.add_argument("--database-url", required=True, help="certctl's database, postgres://user:password@host:port/name")
        importing.add_argument("--dry-run", action="store_true", help="read and count everything, write nothing")
        importing.add_argument("--batch-size", type=int_between(1, 10_000), default=1000, help="rows per read and write (default 1000)")

        commands.add_parser("sweep", help="deliver pending notifications and due retries once, now")

        stats = commands.add_parser("stats", help="counts per status and the oldest due retry")
        stats.add_argument("--json", action="store_true", help="print the REST API's /api/v1/stats/summary JSON")
        stats.add_argument(
            "--recount", action="store_true",
            help="count the events again and repair the stored counts (PostgreSQL keeps them); prints any that were wrong",
        )

        purge = commands.add_parser(
            "purge", help="delete old sent notifications with their attempts and operator actions",
            description="What the housekeeping task does with CERTCTL_NOTIFICATION_RETENTION, by hand: delete sent "
            "notifications sent longer ago than --older-than, in chunks. Dead, failed and pending ones are never "
            "deleted. Attempts not yet counted in /metrics totals are kept until they are (within about an hour).",
        )
        purge.add_argument(
            "--older-than", type=positive_duration, metavar="DURATION",
            help="e.g. 30d or 12h (default CERTCTL_NOTIFICATION_RETENTION)",
        )
        purge.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")

        channels = commands.add_parser("channels", help="each channel's state: closed, open (circuit breaker) or paused")
        channels.add_argument("--json", action="store_true", help="print the REST API's /api/v1/channels JSON")
        for verb, text in (("pause", "hold a channel's events until resumed (a maintenance window)"),
                           ("resume", "let a paused channel's events flow again")):
            change = commands.add_parser(verb, help=text)
            change.add_argument("channel", **channel_choice)

    def handle(self, *args, subcommand, **options):
        getattr(self, f"handle_{subcommand.replace('-', '_')}")(**options)

    def out(self, text=""):
        self.stdout.write(text)

    # --- list -----------------------------------------------------------------

    def handle_list(self, *, status, page, per_page, format, **options):
        filters = given_filters(options)
        if status:
            filters["delivery_status"] = status
        if format == "csv":
            self.write_csv(filters)
            return
        try:
            selection = services.filter_events(NotificationEvent.objects.all(), filters).order_by("-created_at", "-id")
        except services.InvalidInput as exc:
            raise filter_problem(exc) from None
        total = selection.count()
        offset = (page - 1) * per_page
        events = list(selection[offset : offset + per_page])
        if format == "json":
            data = NotificationEventSerializer(events, many=True).data
            self.out(as_json({"data": data, "total": total, "page": page, "per_page": per_page}))
            return
        if not total:
            self.out(
                "no notifications match" if filters else "no notifications yet; create one with `manage.py notifications send`"
            )
            return
        pages = -(-total // per_page)
        if not events:
            self.out(f"page {page} is past the end: {total} notifications make {pages} page(s) of {per_page}")
            return
        rows = [
            (
                e.id, status_with_marker(e), services.retry_display(e), e.type, e.channel, shorten(e.recipient, 30),
                when(e.created_at), when(e.next_retry_at), shorten(e.message, 40), shorten(e.last_error, 60),
            )
            for e in events
        ]
        headers = ("ID", "Status", "Retry", "Type", "Channel", "Recipient", "Created", "Next retry", "Message", "Last error")
        self.out(tabulate(rows, headers=headers))
        footer = f"\n{offset + 1}-{offset + len(events)} of {total} (page {page} of {pages})"
        if page < pages:
            footer += f"; next: --page {page + 1}"
        self.out(footer)

    def write_csv(self, filters: dict[str, str]) -> None:
        """Every matching row, streamed; a progress bar on stderr when it is a terminal (tqdm's default)."""
        bar = tqdm(desc="notifications", unit="row", file=sys.stderr, disable=None)
        try:
            with CsvExport(filters, on_rows=bar.update) as export:
                bar.reset(total=export.total)
                for piece in export:
                    self.stdout.write(piece, ending="")
        except services.InvalidInput as exc:
            raise filter_problem(exc) from None
        finally:
            bar.close()

    # --- show -----------------------------------------------------------------

    def handle_show(self, *, id, json, **_):
        try:
            event = services.get_event(id)
        except services.EventNotFound as exc:
            raise CommandError(f"{exc.message}; {LIST_HINT}", returncode=NOT_FOUND_OR_REFUSED) from None
        attempts = list(event.attempts.order_by("number"))
        actions = list(event.operator_actions.order_by("created_at", "id"))
        if json:
            data = dict(NotificationEventSerializer(event).data)
            data["attempts"] = NotificationAttemptSerializer(attempts, many=True).data
            data["operator_actions"] = OperatorActionSerializer(actions, many=True).data
            self.out(as_json(data))
            return
        fields = [
            ("ID", event.id),
            ("Subject", event.subject),
            ("Type", event.type),
            ("Channel", event.channel),
            ("Recipient", event.recipient),
            ("Certificate", event.certificate_id or ""),
            ("Severity", event.severity or ""),
            ("Status", f"{status_with_marker(event)} ({services.retry_display(event)})"),
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
            rows = [
                (
                    a.number, when(a.started_at), f"{a.duration_ms} ms", a.outcome, a.http_status or "",
                    a.resulting_status or "lease lost", a.error,
                )
                for a in attempts
            ]
            headers = ("#", "Started", "Took", "Outcome", "HTTP", "Became", "Error")
            self.out(tabulate(rows, headers=headers, maxcolwidths=[None] * 6 + [70]))
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
            self.out(f"\nNext attempt at {when(event.next_retry_at)}; `manage.py notifications sweep` runs due retries now.")

    # --- send -----------------------------------------------------------------

    def handle_send(self, *, type, channel, recipient, message, certificate_id, dedup_key, severity, **_):
        try:
            event, created = services.create_event(
                type=type, channel=channel, recipient=recipient, message=message,
                certificate_id=certificate_id, dedup_key=dedup_key, severity=severity,
            )
        except services.InvalidInput as exc:
            problems = "; ".join(f"--{name.replace('_', '-')} {text}" for name, text in exc.errors.items())
            raise CommandError(f"invalid input: {problems}; nothing was created", returncode=USAGE) from None
        if not created:
            self.out(
                f"notification {event.id} already exists with dedup key {event.dedup_key!r} (status {event.status}); "
                "nothing was created"
            )
            return
        self.out(self.style.SUCCESS(f"created notification {event.id} ({event.type} via {event.channel} to {event.recipient})"))
        self.out(f"Pending: {delivery_hint('it')}; `manage.py notifications show {event.id}` shows its attempts.")

    # --- requeue --------------------------------------------------------------

    def check_selection(self, verb: str, ids: list[str], all_dead: bool, filters: dict[str, str]) -> None:
        if all_dead and ids:
            raise CommandError("give either notification ids or --all-dead, not both", returncode=USAGE)
        if filters and not all_dead:
            names = ", ".join(option(name) for name in filters)
            raise CommandError(
                f"{names} only {'applies' if len(filters) == 1 else 'apply'} with --all-dead; to {verb} by id, give the ids alone",
                returncode=USAGE,
            )
        if not all_dead and not ids:
            raise CommandError(
                f"give the ids to {verb}, or --all-dead; list dead ones with `manage.py notifications list --status dead`",
                returncode=USAGE,
            )

    def handle_requeue(self, *, ids, all_dead, dry_run, **options):
        filters = given_filters(options)
        self.check_selection("requeue", ids, all_dead, filters)
        if dry_run:
            self.preview(services.preview_requeue, ids, all_dead, filters, "requeue")
            return
        actor = operator()
        if all_dead:
            self.requeue_all_dead(actor, filters)
            return
        unique_ids = list(dict.fromkeys(ids))
        if len(unique_ids) == 1:
            self.requeue_one(unique_ids[0], actor)
        else:
            not_requeued = 0
            for event_id in unique_ids:
                try:
                    self.requeue_one(event_id, actor)
                except CommandError as exc:
                    not_requeued += 1
                    self.stderr.write(str(exc))
            if not_requeued:
                raise CommandError(
                    f"{not_requeued} of {len(unique_ids)} not requeued (see above)", returncode=NOT_FOUND_OR_REFUSED
                )
        self.out(f"Pending again: {delivery_hint('it' if len(unique_ids) == 1 else 'them')}.")

    def requeue_one(self, event_id, actor):
        try:
            services.requeue_event(event_id, actor)
        except services.EventNotFound as exc:
            raise CommandError(f"{exc.message}; {LIST_HINT}", returncode=NOT_FOUND_OR_REFUSED) from None
        except services.RequeueRefused as exc:
            raise CommandError(f"not requeued: {exc.message}", returncode=NOT_FOUND_OR_REFUSED) from None
        self.out(self.style.SUCCESS(f"{event_id}: requeued"))

    def preview(self, preview: Any, ids: list[str], all_dead: bool, filters: dict[str, str], verb: str) -> None:
        try:
            if all_dead:
                result = preview(filters={"status": Status.DEAD, **filters})
            else:
                result = preview(ids=ids)
        except services.InvalidInput as exc:
            raise filter_problem(exc) from None
        line = f"dry run: would {verb} {result.would_change}, skip {result.skipped}; nothing was changed"
        self.out(line)
        if result.sample:
            self.out(f"for example: {', '.join(result.sample)}")

    def requeue_all_dead(self, actor: services.Actor, filters: dict[str, str]) -> None:
        channel = filters.get("channel")
        scope = f"dead {channel} notifications" if channel else "dead notifications"
        if set(filters) - {"channel"}:
            scope += " matching the filters"
        try:
            result = services.requeue_events(actor, filters={"status": Status.DEAD, **filters})
        except services.InvalidInput as exc:
            raise filter_problem(exc) from None
        if not result.requeued and not result.skipped:
            self.out(f"no {scope} to requeue")
            return
        line = f"requeued {result.requeued} {scope}"
        if result.skipped:
            line += f"; {result.skipped} skipped (changed by someone else meanwhile)"
        self.out(self.style.SUCCESS(line))
        self.out(f"Pending again: {delivery_hint('them')}.")

    # --- read -----------------------------------------------------------------

    def handle_read(self, *, ids: list[str], all_dead: bool, dry_run: bool, **options: Any) -> None:
        filters = given_filters(options)
        self.check_selection("mark read", ids, all_dead, filters)
        if dry_run:
            self.preview(services.preview_mark_read, ids, all_dead, filters, "mark read")
            return
        actor = operator()
        if all_dead:
            channel = filters.get("channel")
            scope = f"dead {channel} notifications" if channel else "dead notifications"
            if set(filters) - {"channel"}:
                scope += " matching the filters"
            try:
                result = services.mark_read_events(actor, filters={"status": Status.DEAD, **filters})
            except services.InvalidInput as exc:
                raise filter_problem(exc) from None
            self.out(self.style.SUCCESS(f"dismissed {result.marked_read} {scope}") if result.marked_read else f"no undismissed {scope}")
            return
        unique_ids = list(dict.fromkeys(ids))
        known = set(NotificationEvent.objects.filter(id__in=unique_ids).values_list("id", flat=True))
        missing = [event_id for event_id in unique_ids if event_id not in known]
        result = services.mark_read_events(actor, ids=[event_id for event_id in unique_ids if event_id in known])
        already = result.skipped
        line = f"marked {result.marked_read} read"
        if result.dismissed:
            line += f" ({result.dismissed} dead, now dismissed)"
        if already:
            line += f"; {already} already read"
        self.out(self.style.SUCCESS(line) if result.marked_read else line)
        if missing:
            raise CommandError(
                f"not found: {', '.join(missing)}; {LIST_HINT}", returncode=NOT_FOUND_OR_REFUSED
            )

    # --- groups ---------------------------------------------------------------

    def handle_groups(self, *, json: bool, **options: Any) -> None:
        try:
            groups = services.failure_groups(given_filters(options))
        except services.InvalidInput as exc:
            raise filter_problem(exc) from None
        if json:
            self.out(as_json(FailureGroupListSerializer({"data": groups, "total": len(groups)}).data))
            return
        if not groups:
            self.out("the dead-letter queue is empty" + (" for these filters" if given_filters(options) else ""))
            return
        rows = [
            (g.count, g.channel, g.kind, shorten(g.error, 80), when(g.first_at), when(g.last_at), g.sample_id) for g in groups
        ]
        self.out(tabulate(rows, headers=("Count", "Channel", "Kind", "Cause", "First", "Last", "Example")))
        self.out(
            f"\n{len(groups)} cause(s), {sum(g.count for g in groups)} notification(s); requeue one with "
            "`manage.py notifications requeue --all-dead --channel CHANNEL --cause-kind KIND --cause 'CAUSE'` "
            "(the whole cause: --json prints it uncut)"
        )

    # --- import-certctl -------------------------------------------------------

    def handle_import_certctl(self, *, database_url: str, dry_run: bool, batch_size: int, **_: object) -> None:
        # On a terminal only (tqdm's default): a log file or a pipe gets the summary alone.
        bar = tqdm(desc="notification_events", unit="row", file=sys.stderr, disable=None)
        try:
            report = certctl_import.import_certctl(
                database_url, dry_run=dry_run, batch_size=batch_size,
                on_total=lambda total: bar.reset(total=total), on_progress=bar.update,
            )
        except certctl_import.SourceError as exc:
            raise CommandError(f"nothing imported: {exc}", returncode=NOT_FOUND_OR_REFUSED) from None
        finally:
            bar.close()
        source = certctl_import.describe_source(database_url)
        states = ", ".join(f"{report.imported[state]} {state}" for state in Status.values)
        verb = "would import" if dry_run else "imported"
        self.out(f"certctl database {source}: {report.rows} notification events read")
        self.out(f"{verb} {report.imported_total} ({states})")
        if report.marked_read:
            self.out(
                f"  {report.marked_read} of them read in certctl, now marked read"
                + (f"; {report.read_before_delivery} were read before delivery and are dead (never sent)" if report.read_before_delivery else "")
            )
        self.out(f"already here, left alone: {report.already_present}")
        if report.invalid:
            self.stderr.write(f"not importable, skipped: {len(report.invalid)}")
            for event_id, reason in report.invalid[:20]:
                self.stderr.write(f"  {event_id}: {reason}")
            if len(report.invalid) > 20:
                self.stderr.write(f"  … and {len(report.invalid) - 20} more")
        if dry_run:
            self.out("dry run: nothing was written")
        elif report.imported[Status.PENDING] or report.imported[Status.FAILED]:
            self.out(f"Pending and failed ones carry on: {delivery_hint('them')}.")

    # --- sweep ----------------------------------------------------------------

    def handle_sweep(self, **_):
        # One pass takes pending events first, then due retries, until none is left.
        report = passes.process_pending()
        counts = ", ".join(f"{report.outcomes.get(status, 0)} {status}" for status in (Status.SENT, Status.FAILED, Status.DEAD))
        if report.outcomes.get(LEASE_LOST):
            # Another worker or an operator changed the event while we sent it; our result was not applied.
            counts += f", {report.outcomes[LEASE_LOST]} overtaken by a requeue or another worker"
        if report.outcomes.get(RELEASED):
            counts += f", {report.outcomes[RELEASED]} not started in time and released for the next pass"
        self.out(f"sweep: {report.claimed} claimed (pending and due retries): {counts} ({report.duration_s:.2f}s)")

    # --- stats ----------------------------------------------------------------

    def handle_channels(self, *, json, **_):
        channels = services.channel_states()
        if json:
            self.out(as_json({"data": ChannelSerializer(channels, many=True).data, "total": len(channels)}))
            return
        rows = [
            (
                c["name"], "yes" if c["configured"] else "no", c["state"], when(c["since"]), c["paused_by"] or "",
                c["consecutive_failures"], when(c["next_probe_at"]),
            )
            for c in channels
        ]
        self.out(tabulate(rows, headers=("Channel", "Configured", "State", "Since", "Paused by", "Failures in a row", "Next probe")))

    def handle_pause(self, *, channel, **_):
        if services.pause_channel(channel, operator()):
            self.out(self.style.SUCCESS(f"{channel} paused: its events wait until `manage.py notifications resume {channel}`"))
        else:
            self.out(f"{channel} was already paused; nothing changed")

    def handle_resume(self, *, channel, **_):
        if services.resume_channel(channel, operator()):
            self.out(self.style.SUCCESS(f"{channel} resumed: its waiting events are delivered now"))
        else:
            self.out(f"{channel} was not paused; nothing changed")

    def handle_stats(self, *, json, recount, **_):
        if recount:
            self._recount()
        summary = services.stats_summary()
        if json:
            self.out(as_json(StatsSummarySerializer(summary).data))
            return
        oldest = summary["oldest_due_retry_at"]
        rows = [
            ("pending", summary["notifications_pending"]),
            ("sent", summary["notifications_sent"]),
            ("failed", summary["notifications_failed"]),
            ("dead", summary["notifications_dead"]),
            ("dead, not dismissed", summary["notifications_dead_unacknowledged"]),
            ("total", summary["notifications_total"]),
            ("unread", summary["notifications_unread"]),
            ("oldest due retry", f"{when(oldest)} ({summary['oldest_due_retry_age_seconds']}s overdue)" if oldest else "none"),
        ]
        self.out(tabulate(rows, headers=("Notifications", "Count")))

    def _recount(self) -> None:
        if not NotificationCount.objects.maintained():
            self.out("counts are not stored on this database (SQLite counts the events each time): nothing to repair")
            return
        repairs = upkeep.recount()
        for repair in repairs:
            channel, status, unread = repair.group
            self.out(
                f"repaired {channel} {status} {'unread' if unread else 'read'}: was {repair.counted}, "
                f"counted {repair.actual}"
            )
        self.out(f"recounted: {len(repairs)} stored counts were wrong and are repaired" if repairs else "recounted: every stored count was right")

    # --- purge ----------------------------------------------------------------

    def handle_purge(self, *, older_than: timedelta | None, dry_run: bool, **_: object) -> None:
        if older_than is None:
            older_than = settings.CERTCTL_NOTIFICATION_RETENTION
            if not older_than:
                raise CommandError(
                    "CERTCTL_NOTIFICATION_RETENTION is 0 (keep everything): give --older-than, e.g. --older-than 90d",
                    returncode=USAGE,
                )
        if not dry_run:
            upkeep.fold_delivery_totals()
        report = upkeep.purge(older_than, dry_run=dry_run)
        if report.sent_before is None:
            self.out(
                "nothing purged: no attempts have been folded into the /metrics totals yet "
                "(the worker's housekeeping task does it every minute); try again later"
            )
            return
        verb = "would delete" if dry_run else "deleted"
        self.out(
            f"{verb} {report.events} sent notifications sent before {when(report.sent_before)}, "
            f"with {report.attempts} attempts and {report.operator_actions} operator actions"
        )
        if dry_run:
            self.out("dry run: nothing was deleted")
