"""django-q2 entry points. Thin: each calls the delivery engine."""
from typing import Any

from notifications import delivery, dispatch


def deliver_pending() -> dict[str, Any]:
    """The coalesced kick queued after creates and requeues (notifications.dispatch)."""
    dispatch.kick_started()
    return delivery.process_pending().as_dict()


def process_pending() -> dict[str, Any]:
    return delivery.process_pending().as_dict()


def retry_sweep() -> dict[str, Any]:
    return delivery.retry_sweep().as_dict()
