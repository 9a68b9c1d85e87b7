"""django-q2 entry points. Thin: each calls the delivery engine."""
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError

from notifications import delivery, dispatch


def _run(run_pass: Callable[[], delivery.PassReport]) -> dict[str, Any]:
    try:
        return run_pass().as_dict()
    except DatabaseError:
        # The pass already waited out up to DATABASE_RETRY_FOR of outage; the next attempt is a kick now,
        # not the schedule's next tick a minute later.
        dispatch.request_kick()
        raise


def deliver_pending() -> dict[str, Any]:
    """The coalesced kick queued after creates and requeues (notifications.dispatch)."""
    dispatch.kick_started()
    return _run(delivery.process_pending)


def process_pending() -> dict[str, Any]:
    return _run(delivery.process_pending)


def retry_sweep() -> dict[str, Any]:
    return _run(delivery.retry_sweep)
