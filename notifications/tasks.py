"""django-q2 entry points, found by the names stored in its schedules (notifications.schedules). Thin: each calls
the delivery engine."""
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import DatabaseError

from notifications.engine import dispatch, passes, upkeep
from notifications.engine.report import PassReport


def _run(run_pass: Callable[[], PassReport]) -> dict[str, Any]:
    try:
        return run_pass().as_dict()
    except DatabaseError:
        # The pass already waited out up to DATABASE_RETRY_FOR of outage; the next attempt is a kick now,
        # not the schedule's next tick a minute later.
        dispatch.request_kick()
        raise


def deliver_pending() -> dict[str, Any]:
    """The coalesced kick queued after creates and requeues (notifications.engine.dispatch)."""
    dispatch.kick_started()
    return _run(passes.process_pending)


def process_pending() -> dict[str, Any]:
    return _run(passes.process_pending)


def retry_sweep() -> dict[str, Any]:
    return _run(passes.retry_sweep)


def housekeeping(now: datetime | None = None) -> dict[str, Any]:
    """Fold the /metrics totals and the event counts, then purge what retention lets go
    (notifications.engine.upkeep)."""
    return upkeep.housekeeping(now)
