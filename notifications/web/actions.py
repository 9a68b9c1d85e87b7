"""The UI's changes, all through notifications.operations: requeue and mark read (dismiss) one notification, the
ticked ones, all that match the Dead letter tab's filters, or a failure group."""
from collections.abc import Callable
from typing import Protocol, TypeVar

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from notifications.actors import Actor
from notifications.errors import InvalidInput, ServiceError
from notifications.models import CauseKind, Status
from notifications.operations.events import (
    BulkReadResult,
    BulkRequeueResult,
    mark_read_events,
    requeue_event,
    requeue_events,
)
from notifications.operations.events import (
    dismiss_group as dismiss_failure_group,
)
from notifications.operations.events import (
    mark_read as mark_event_read,
)
from notifications.operations.events import (
    requeue_group as requeue_failure_group,
)
from notifications.web.common import CHANGE_PERMISSION, acknowledge_view, actor_of, back, change_view, list_url
from notifications.web.forms import TAB_DEAD, NotificationFilterForm
from notifications.web.pages import matching

SKIPPED_NOTE = "skipped (not failed or dead)"
SKIPPED_READ_NOTE = "skipped (already dismissed or gone)"

Result = TypeVar("Result", BulkRequeueResult, BulkReadResult)
Result_co = TypeVar("Result_co", BulkRequeueResult, BulkReadResult, covariant=True)


class BulkAction(Protocol[Result_co]):
    """operations.events.requeue_events or mark_read_events: by ids or by filters."""

    def __call__(self, actor: Actor, ids: list[str] | None = None, filters: dict[str, str] | None = None) -> Result_co:
        ...


@change_view
def requeue(request: HttpRequest, event_id: str) -> HttpResponse:
    try:
        requeue_event(event_id, actor=actor_of(request))
    except ServiceError as exc:
        messages.error(request, f"Not requeued: {exc.message}.")
    else:
        messages.success(request, f"Requeued {event_id}: it is pending again and will be delivered shortly.")
    return back(request, reverse("ui-notifications"))


@acknowledge_view
def mark_read(request: HttpRequest, event_id: str) -> HttpResponse:
    """Mark read; for a dead event this is "Dismiss": it leaves the Dead letter tab. Delivery is untouched."""
    try:
        event = mark_event_read(event_id, actor=actor_of(request))
    except ServiceError as exc:
        messages.error(request, f"Not marked read: {exc.message}.")
    else:
        if event.status == Status.DEAD:
            messages.success(
                request, f"Dismissed {event_id}: it left the Dead letter tab (Show dismissed brings it back)."
            )
        else:
            messages.success(request, f"Marked {event_id} as read.")
    return back(request, reverse("ui-notifications"))


def _report_bulk(request: HttpRequest, result: BulkRequeueResult) -> None:
    messages.success(request, f"{result.requeued} requeued, {result.skipped} {SKIPPED_NOTE}.")


def _on_selected(
    request: HttpRequest,
    bulk_action: BulkAction[Result],
    report: Callable[[HttpRequest, Result], None],
    done: str,
    button: str,
) -> HttpResponse:
    """Run a bulk service action on the ticked rows, say what it did, and go back to the list."""
    ids = request.POST.getlist("ids")
    if not ids:
        messages.error(request, f"Nothing {done}: tick the checkbox of at least one notification, then press {button}.")
    else:
        try:
            report(request, bulk_action(actor=actor_of(request), ids=ids))
        except InvalidInput as exc:
            messages.error(request, f"Nothing {done}: {exc.message}.")
    return back(request, list_url({"tab": TAB_DEAD}))


@change_view
def requeue_selected(request: HttpRequest) -> HttpResponse:
    return _on_selected(request, requeue_events, _report_bulk, "requeued", "Requeue selected")


def _report_dismissed(request: HttpRequest, result: BulkReadResult) -> None:
    messages.success(request, f"{result.marked_read} dismissed, {result.skipped} {SKIPPED_READ_NOTE}.")


@acknowledge_view
def dismiss_selected(request: HttpRequest) -> HttpResponse:
    return _on_selected(request, mark_read_events, _report_dismissed, "dismissed", "Dismiss selected")


def _dead_tab_form(request: HttpRequest, ignore: tuple[str, ...] = ()) -> NotificationFilterForm:
    data = (request.POST if request.method == "POST" else request.GET).copy()
    data["tab"] = TAB_DEAD
    for name in ("page", "csrfmiddlewaretoken", *ignore):
        data.pop(name, None)
    return NotificationFilterForm(data)


def _on_matching(
    request: HttpRequest,
    form: NotificationFilterForm,
    template: str,
    bulk_action: BulkAction[Result],
    report: Callable[[HttpRequest, Result], None],
    done: str,
) -> HttpResponse:
    """GET: confirm with the count of what the Dead letter tab shows for these filters. POST: run the bulk
    service action on it."""
    if not form.is_valid():
        return render(request, template, {"form": form}, status=400)
    back_to = list_url({"tab": TAB_DEAD, **form.query_values()})
    if request.method != "POST":
        return render(request, template, {
            "form": form, "count": matching(form), "filters_in_words": form.describe(),
            "hidden": form.query_values(), "back_to": back_to,
        })
    try:
        result = bulk_action(actor=actor_of(request), filters=form.service_filters())
    except InvalidInput as exc:
        messages.error(request, f"Nothing {done}: {exc.message}. Narrow the filters and try again.")
    else:
        report(request, result)
    return redirect(back_to)


@login_required
@require_http_methods(["GET", "POST"])
def dismiss_matching(request: HttpRequest) -> HttpResponse:
    # Dismissing what is already dismissed would change nothing.
    form = _dead_tab_form(request, ignore=("dismissed",))
    return _on_matching(
        request, form, "notifications/dismiss_matching.html", mark_read_events, _report_dismissed, "dismissed"
    )


@login_required
@require_http_methods(["GET", "POST"])
@permission_required(CHANGE_PERMISSION, raise_exception=True)
def requeue_matching(request: HttpRequest) -> HttpResponse:
    form = _dead_tab_form(request)
    return _on_matching(request, form, "notifications/requeue_matching.html", requeue_events, _report_bulk, "requeued")


def _group_form(request: HttpRequest) -> tuple[NotificationFilterForm, str, str, str]:
    """The tab's filters, and the group a Requeue group or Dismiss group button names: channel, kind, cause."""
    form = _dead_tab_form(request, ignore=("channel_group", "kind_group", "error_group", "next", "view"))
    channel, kind, cause = (request.POST.get(name, "") for name in ("channel_group", "kind_group", "error_group"))
    return form, channel, kind, cause


def _groups_url(form: NotificationFilterForm) -> str:
    return list_url({"tab": TAB_DEAD, "view": "groups", **(form.query_values() if form.is_valid() else {})})


@change_view
def requeue_group(request: HttpRequest) -> HttpResponse:
    """Requeue every dead notification of one failure group (channel, kind and cause) under the tab's filters."""
    form, channel, kind, cause = _group_form(request)
    if not form.is_valid() or not channel or kind not in CauseKind.values:
        messages.error(
            request, "Nothing requeued: the group or its filters were not valid; reload the page and try again."
        )
    else:
        _report_bulk(request, requeue_failure_group(actor_of(request), channel, kind, cause, form.service_filters()))
    return back(request, _groups_url(form))


@acknowledge_view
def dismiss_group(request: HttpRequest) -> HttpResponse:
    """Dismiss every dead notification of one failure group under the tab's filters."""
    form, channel, kind, cause = _group_form(request)
    if not form.is_valid() or not channel or kind not in CauseKind.values:
        messages.error(
            request, "Nothing dismissed: the group or its filters were not valid; reload the page and try again."
        )
    else:
        _report_dismissed(
            request, dismiss_failure_group(actor_of(request), channel, kind, cause, form.service_filters())
        )
    return back(request, _groups_url(form))
