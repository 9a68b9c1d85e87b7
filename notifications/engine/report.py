"""What a pass did: its report, kept for /metrics (LastPass) by every worker after each pass."""
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import Error as DatabaseError

from notifications.engine.upkeep import fold_delivery_totals
from notifications.models import LastPass

log = logging.getLogger("notifications.metrics")

# The result of an event a pass claimed but did not start in time, and of one whose lease was lost meanwhile.
RELEASED = "released"
LEASE_LOST = "lease_lost"


@dataclass
class PassReport:
    """What one pending pass or retry sweep did."""

    kind: str
    claimed: int = 0
    # New status (or RELEASED, or LEASE_LOST): how many events got it.
    outcomes: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "claimed": self.claimed, "outcomes": self.outcomes,
            "duration_s": round(self.duration_s, 3),
        }


def pass_finished(report: PassReport, finished_at: datetime) -> None:
    """Called by every worker after each pending pass and retry sweep: keep its figures, fold old attempts."""
    try:
        LastPass.objects.bulk_create(
            [LastPass(
                kind=report.kind, finished_at=finished_at, duration_seconds=report.duration_s, claimed=report.claimed
            )],
            update_conflicts=True, unique_fields=["kind"], update_fields=["finished_at", "duration_seconds", "claimed"],
        )
        fold_delivery_totals()
    except DatabaseError as exc:
        # The deliveries of the pass are recorded already; only /metrics lags until the next pass.
        log.warning(
            "could not record the %s pass figures for /metrics: %s", report.kind, exc, extra={"pass": report.kind}
        )
