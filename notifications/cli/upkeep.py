"""`notifications import-certctl`, `sweep`, `stats` and `purge`: the service's upkeep by hand."""
import sys
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from tabulate import tabulate
from tqdm import tqdm

from notifications.cli.common import (
    NOT_FOUND_OR_REFUSED,
    USAGE,
    Subcommands,
    as_json,
    counter,
    delivery_hint,
    int_between,
    operator,
    positive_duration,
    when,
)
from notifications.engine import passes, upkeep
from notifications.engine.report import LEASE_LOST, RELEASED
from notifications.errors import DestinationConflict, SecretsUnavailable
from notifications.models import NotificationCount, Status
from notifications.operations import certctl_destinations, certctl_import
from notifications.operations.destinations import rotate_secrets
from notifications.queries.summary import stats_summary
from notifications.serializers import StatsSummarySerializer


class UpkeepCommands(Subcommands):
    """import-certctl, sweep, stats, purge, rotate-secrets"""

    @staticmethod
    def add_parsers(commands: Any) -> None:
        importing = commands.add_parser(
            "import-certctl", help="copy notification events and notifier configuration from certctl",
            description="Copy certctl's notification_events rows (ids kept) into this service (--database-url), "
            "and its notifier configuration (--env-file: the CERTCTL_* channel variables) as stored destinations "
            "named certctl-<channel>. Rows and unchanged destinations already here are left alone, so it can be run "
            "again. Pending and failed rows are delivered by this service's workers afterwards: stop certctl's "
            "scheduler first.",
        )
        importing.add_argument(
            "--database-url", help="certctl's database, postgres://user:password@host:port/name"
        )
        importing.add_argument(
            "--env-file", metavar="PATH",
            help="certctl's environment file: each channel it configures becomes a destination, secrets sealed",
        )
        importing.add_argument("--dry-run", action="store_true", help="read and count everything, write nothing")
        importing.add_argument(
            "--batch-size", type=int_between(1, 10_000), default=1000, help="rows per read and write (default 1000)"
        )

        commands.add_parser("sweep", help="deliver pending notifications and due retries once, now")

        rotation = commands.add_parser(
            "rotate-secrets", help="re-encrypt every stored destination's secrets under the first key",
            description="Key rotation: put the new key first in CERTCTL_SECRETS_KEYS (NEW,OLD), restart, run this, "
            "then drop the old key. Each destination is re-sealed and audited; running it again is harmless.",
        )
        rotation.add_argument(
            "--batch-size", type=int_between(1, 10_000), default=100, help="destinations per transaction (default 100)"
        )

        stats = commands.add_parser("stats", help="counts per status and the oldest due retry")
        stats.add_argument("--json", action="store_true", help="print the REST API's /api/v1/stats/summary JSON")
        stats.add_argument(
            "--recount", action="store_true",
            help="count the events again and repair the stored counts (PostgreSQL keeps them); "
            "prints any that were wrong",
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

    # --- import-certctl -------------------------------------------------------

    def handle_import_certctl(
        self, *, database_url: str | None, env_file: str | None, dry_run: bool, batch_size: int, **_: object
    ) -> None:
        if not database_url and not env_file:
            raise CommandError(
                "import-certctl needs --database-url (certctl's notification events), --env-file (its notifier "
                "configuration) or both", returncode=USAGE,
            )
        if env_file:
            self.import_destinations(env_file, dry_run)
        if database_url:
            self.import_events(database_url, dry_run, batch_size)

    def import_destinations(self, env_file: str, dry_run: bool) -> None:
        try:
            report = certctl_destinations.import_destinations(env_file, actor=operator(), dry_run=dry_run)
        except certctl_destinations.EnvFileError as exc:
            raise CommandError(f"no destination imported: {exc}", returncode=NOT_FOUND_OR_REFUSED) from None
        except DestinationConflict as exc:
            raise CommandError(f"no destination imported: {exc.message}", returncode=NOT_FOUND_OR_REFUSED) from None
        self.out(f"certctl environment file {env_file}: {len(report.destinations)} channel(s) configured")
        would = {"created": "would create", "updated": "would update"} if dry_run else {}
        for imported in report.destinations:
            detail = imported.reason or ", ".join(imported.fields)
            outcome = would.get(imported.outcome, imported.outcome)
            self.out(f"  {imported.name} ({imported.channel}): {outcome}{' - ' + detail if detail else ''}")
        counts = ", ".join(
            f"{report.count(outcome)} {would.get(outcome, outcome)}"
            for outcome in ("created", "updated", "unchanged", "skipped")
        )
        self.out(f"destinations: {counts}")
        if dry_run:
            self.out("dry run: no destination was written")

    def import_events(self, database_url: str, dry_run: bool, batch_size: int) -> None:
        # On a terminal only (tqdm's default): a log file or a pipe gets the summary alone.
        bar = tqdm(desc="notification_events", unit="row", file=sys.stderr, disable=None)
        try:
            report = certctl_import.import_certctl(
                database_url, dry_run=dry_run, batch_size=batch_size,
                on_total=lambda total: bar.reset(total=total), on_progress=counter(bar),
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
            line = f"  {report.marked_read} of them read in certctl, now marked read"
            if report.read_before_delivery:
                line += f"; {report.read_before_delivery} were read before delivery and are dead (never sent)"
            self.out(line)
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

    def handle_rotate_secrets(self, *, batch_size: int, **_: object) -> None:
        try:
            rotated = rotate_secrets(actor=operator(), batch_size=batch_size)
        except SecretsUnavailable as exc:
            raise CommandError(f"rotation stopped: {exc.message}", returncode=NOT_FOUND_OR_REFUSED) from None
        self.out(f"re-sealed the secrets of {rotated} destination(s) under the first key of CERTCTL_SECRETS_KEYS")

    def handle_sweep(self, **_: Any) -> None:
        # One pass takes pending events first, then due retries, until none is left.
        report = passes.process_pending()
        outcomes = (Status.SENT, Status.FAILED, Status.DEAD)
        counts = ", ".join(f"{report.outcomes.get(status, 0)} {status}" for status in outcomes)
        if report.outcomes.get(LEASE_LOST):
            # Another worker or an operator changed the event while we sent it; our result was not applied.
            counts += f", {report.outcomes[LEASE_LOST]} overtaken by a requeue or another worker"
        if report.outcomes.get(RELEASED):
            counts += f", {report.outcomes[RELEASED]} not started in time and released for the next pass"
        self.out(f"sweep: {report.claimed} claimed (pending and due retries): {counts} ({report.duration_s:.2f}s)")

    def handle_stats(self, *, json: bool, recount: bool, **_: Any) -> None:
        if recount:
            self._recount()
        summary = stats_summary()
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
            (
                "oldest due retry",
                f"{when(oldest)} ({summary['oldest_due_retry_age_seconds']}s overdue)" if oldest else "none",
            ),
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
        if repairs:
            self.out(f"recounted: {len(repairs)} stored counts were wrong and are repaired")
        else:
            self.out("recounted: every stored count was right")

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
