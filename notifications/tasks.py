"""django-q2 entry points. Thin: each calls one service."""
import logging

from notifications import services

log = logging.getLogger("notifications.tasks")


def deliver_event(event_id):
    return services.deliver_event(event_id)


def process_pending():
    return services.process_pending().as_dict()


def retry_sweep():
    return services.retry_sweep().as_dict()


def enqueue(task_name, *args):
    """Hand a task to the cluster. A broker outage must not fail the caller: the schedules pick the event up."""
    from django_q.tasks import async_task

    try:
        async_task(f"notifications.tasks.{task_name}", *args, group=task_name)
    except Exception as exc:
        log.warning("could not enqueue %s%s (%s); the next scheduled pass will deliver it", task_name, args, exc)
