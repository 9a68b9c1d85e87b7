"""`notifications requeue`, `read` and `groups`: triage of failed and dead notifications."""
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django.core.management.base import CommandError
from tabulate import tabulate

from notifications.actors import Actor
from notifications.cli.common import (
    LIST_HINT,
    NOT_FOUND_OR_REFUSED,
    USAGE,
    Subcommands,
    add_filter_options,
    as_json,
    delivery_hint,
    filter_problem,
    given_filters,
    operator,
    option,
    shorten,
    when,
)
from notifications.errors import EventNotFound, InvalidInput, RequeueRefused
from notifications.filtersets import STATE_FILTERS
from notifications.models import NotificationEvent, Status
from notifications.operations.events import mark_read_events, requeue_event, requeue_events
from notifications.queries.groups import failure_groups
from notifications.serializers import BULK_MARK_READ, BULK_REQUEUE, BulkAction, FailureGroupListSerializer

Result = TypeVar("Result")
# The help of the subcommands that select by id or, with --all-dead, the dead-letter queue.
BULK_SUBCOMMANDS = {
    "requeue": (
        "move failed or dead notifications back to pending",
        "Requeue the given ids, or with --all-dead every dead notification not dismissed (the Dead letter tab's "
        "content), narrowed by the filters (e.g. --failed-after 2026-11-29T08:00:00Z recovers what died since). "
        "Dismissed dead ones are requeued by id.",
        "requeue every dead notification not dismissed",
        "requeued",
    ),
    "read": (
        "mark notifications read; for dead ones this dismisses them from the dead-letter queue",
        "Mark the given ids read, or dismiss every undismissed dead notification with --all-dead (narrowed by the "
        "filters). Reading never starts or stops a delivery.",
        "dismiss every dead notification not yet dismissed",
        "dismissed",
    ),
}


def dead_letter(filters: Mapping[str, str]) -> dict[str, str]:
    """What --all-dead selects: the dead notifications not dismissed, narrowed by `filters`."""
    return {"status": Status.DEAD, **filters}


def on_dead_letter(change: Callable[..., Result], actor: Actor, filters: Mapping[str, str]) -> Result:
    """`change` (an operation) on what --all-dead and `filters` select, in one bulk operation."""
    try:
        return change(actor, filters=dead_letter(filters))
    except InvalidInput as exc:
        raise filter_problem(exc) from None


def dead_scope(filters: Mapping[str, str]) -> str:
    """The dead-letter queue that --all-dead and `filters` select, in words."""
    channel = filters.get("channel")
    scope = f"dead {channel} notifications" if channel else "dead notifications"
    if set(filters) - {"channel"}:
        scope += " matching the filters"
    return scope


class TriageCommands(Subcommands):
    """requeue, read, groups"""

    @staticmethod
    def add_parsers(commands: Any) -> None:
        for name, (summary, description, all_dead, counted) in BULK_SUBCOMMANDS.items():
            bulk = commands.add_parser(name, help=summary, description=description)
            bulk.add_argument("ids", nargs="*", metavar="ID")
            bulk.add_argument("--all-dead", action="store_true", help=all_dead)
            # --all-dead selects by state itself: the dead ones not dismissed.
            add_filter_options(bulk, excluded=STATE_FILTERS, scope=" (with --all-dead)")
            bulk.add_argument(
                "--dry-run", action="store_true", help=f"change nothing: count what would be {counted}"
            )
            bulk.add_argument(
                "--json", action="store_true",
                help=f"with --dry-run: print the REST API's dry-run answer (POST /api/v1/notifications/{name})",
            )

        groups = commands.add_parser(
            "groups", help="the dead-letter queue grouped by cause",
            description="Dead notifications not dismissed, grouped by channel, kind (permanent or transient) and "
            "cause: the last error with ids, numbers, hex strings, UUIDs and times replaced by placeholders (an HTTP "
            "status stays). Largest group first, then the one that failed last.",
        )
        add_filter_options(groups, excluded=STATE_FILTERS)
        groups.add_argument("--json", action="store_true", help="print the REST API's dead-letter/groups JSON")

    def selection(
        self, verb: str, ids: list[str], all_dead: bool, dry_run: bool, json: bool, options: Mapping[str, Any]
    ) -> dict[str, str]:
        """The filters of a bulk subcommand, once its options are known to fit together."""
        filters = given_filters(options)
        if all_dead and ids:
            raise CommandError("give either notification ids or --all-dead, not both", returncode=USAGE)
        if filters and not all_dead:
            names = ", ".join(option(name) for name in filters)
            applies = "applies" if len(filters) == 1 else "apply"
            raise CommandError(
                f"{names} only {applies} with --all-dead; to {verb} by id, give the ids alone", returncode=USAGE
            )
        if not all_dead and not ids:
            raise CommandError(
                f"give the ids to {verb}, or --all-dead; "
                "list dead ones with `manage.py notifications list --status dead`",
                returncode=USAGE,
            )
        if json and not dry_run:
            raise CommandError("--json only applies with --dry-run", returncode=USAGE)
        return filters

    def preview(
        self, action: BulkAction, verb: str, ids: list[str], all_dead: bool, filters: dict[str, str], json: bool
    ) -> None:
        try:
            result = action.preview(filters=dead_letter(filters)) if all_dead else action.preview(ids=ids)
        except InvalidInput as exc:
            raise filter_problem(exc) from None
        if json:
            self.out(as_json(action.preview_answer(result).data))
            return
        self.out(f"dry run: would {verb} {result.would_change}, skip {result.skipped}; nothing was changed")
        if result.sample:
            self.out(f"for example: {', '.join(result.sample)}")

    # --- requeue --------------------------------------------------------------

    def handle_requeue(self, *, ids: list[str], all_dead: bool, dry_run: bool, json: bool, **options: Any) -> None:
        filters = self.selection("requeue", ids, all_dead, dry_run, json, options)
        if dry_run:
            self.preview(BULK_REQUEUE, "requeue", ids, all_dead, filters, json)
            return
        actor = operator()
        if all_dead:
            result = on_dead_letter(requeue_events, actor, filters)
            if not result.requeued and not result.skipped:
                self.out(f"no {dead_scope(filters)} to requeue")
                return
            line = f"requeued {result.requeued} {dead_scope(filters)}"
            if result.skipped:
                line += f"; {result.skipped} skipped (changed by someone else meanwhile)"
            self.out(self.style.SUCCESS(line))
            self.out(f"Pending again: {delivery_hint('them')}.")
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

    def requeue_one(self, event_id: str, actor: Actor) -> None:
        try:
            requeue_event(event_id, actor)
        except EventNotFound as exc:
            raise CommandError(f"{exc.message}; {LIST_HINT}", returncode=NOT_FOUND_OR_REFUSED) from None
        except RequeueRefused as exc:
            raise CommandError(f"not requeued: {exc.message}", returncode=NOT_FOUND_OR_REFUSED) from None
        self.out(self.style.SUCCESS(f"{event_id}: requeued"))

    # --- read -----------------------------------------------------------------

    def handle_read(self, *, ids: list[str], all_dead: bool, dry_run: bool, json: bool, **options: Any) -> None:
        filters = self.selection("mark read", ids, all_dead, dry_run, json, options)
        if dry_run:
            self.preview(BULK_MARK_READ, "mark read", ids, all_dead, filters, json)
            return
        actor = operator()
        if all_dead:
            read = on_dead_letter(mark_read_events, actor, filters)
            scope = dead_scope(filters)
            if read.marked_read:
                self.out(self.style.SUCCESS(f"dismissed {read.marked_read} {scope}"))
            else:
                self.out(f"no undismissed {scope}")
            return
        unique_ids = list(dict.fromkeys(ids))
        known = set(NotificationEvent.objects.filter(id__in=unique_ids).values_list("id", flat=True))
        missing = [event_id for event_id in unique_ids if event_id not in known]
        result = mark_read_events(actor, ids=[event_id for event_id in unique_ids if event_id in known])
        line = f"marked {result.marked_read} read"
        if result.dismissed:
            line += f" ({result.dismissed} dead, now dismissed)"
        if result.skipped:
            line += f"; {result.skipped} already read"
        self.out(self.style.SUCCESS(line) if result.marked_read else line)
        if missing:
            raise CommandError(f"not found: {', '.join(missing)}; {LIST_HINT}", returncode=NOT_FOUND_OR_REFUSED)

    # --- groups ---------------------------------------------------------------

    def handle_groups(self, *, json: bool, **options: Any) -> None:
        filters = given_filters(options)
        try:
            groups = failure_groups(filters)
        except InvalidInput as exc:
            raise filter_problem(exc) from None
        if json:
            self.out(as_json(FailureGroupListSerializer({"data": groups, "total": len(groups)}).data))
            return
        if not groups:
            self.out("the dead-letter queue is empty" + (" for these filters" if filters else ""))
            return
        rows = [
            (g.count, g.channel, g.kind, shorten(g.error, 80), when(g.first_at), when(g.last_at), g.sample_id)
            for g in groups
        ]
        self.out(tabulate(rows, headers=("Count", "Channel", "Kind", "Cause", "First", "Last", "Example")))
        self.out(
            f"\n{len(groups)} cause(s), {sum(g.count for g in groups)} notification(s); requeue one with "
            "`manage.py notifications requeue --all-dead --channel CHANNEL --cause-kind KIND --cause 'CAUSE'` "
            "(the whole cause: --json prints it uncut)"
        )
