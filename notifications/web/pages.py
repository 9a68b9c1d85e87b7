"""The notification list (with its Dead letter tab and its groups by cause), one notification's detail, and the CSV
download of what the list shows."""
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.urls import reverse

from notifications.errors import EventNotFound
from notifications.queries.events import EventHistory, EventPaginator, count_events, event_with_history
from notifications.queries.export import CsvExport, csv_response
from notifications.queries.groups import FailureGroup, failure_groups
from notifications.web.common import CHANGE_PERMISSION, list_url
from notifications.web.forms import TAB_DEAD, NotificationFilterForm

PAGE_SIZE = 50


def matching(form: NotificationFilterForm) -> int:
    """How many events the form's filters select, as the list counts them."""
    return count_events(form.service_filters())


@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    form = NotificationFilterForm(request.GET)
    valid = form.is_valid()
    grouped = valid and form.grouped
    # Group by cause lists every group at once: no page, no count of the list.
    groups = _with_list_urls(failure_groups(form.service_filters()), form) if grouped else []
    page = None
    if not grouped:
        pages = EventPaginator(form.service_filters(), PAGE_SIZE) if valid else Paginator([], PAGE_SIZE)
        page = pages.get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("fragment", None)
    return_to = request.path + (f"?{params.urlencode()}" if params else "")
    export_params = params.copy()
    for name in ("page", "view"):
        export_params.pop(name, None)
    dead_tab = form.selected_tab == TAB_DEAD
    context = {
        "form": form,
        "page": page,
        "dead_tab": dead_tab,
        "grouped": grouped,
        "groups": groups,
        "grouped_total": sum(row["group"].count for row in groups),
        "filter_values": form.query_values() if valid else {},
        # The Dead letter tab implies the status, so its filter is not offered there; "Show dismissed" only is.
        # A cause is chosen from a group, not typed: it travels as a hidden field.
        "visible_filters": [
            name for name in form.FILTER_FIELDS
            if name != ("status" if dead_tab else "dismissed") and name not in form.GROUP_FIELDS
        ],
        "return_to": return_to,
        "can_change": request.user.has_perm(CHANGE_PERMISSION),
        "filters_in_words": form.describe() if valid else "",
        "requeue_matching_url": reverse("ui-requeue-matching") + (f"?{params.urlencode()}" if params else ""),
        "dismiss_matching_url": reverse("ui-dismiss-matching") + (f"?{params.urlencode()}" if params else ""),
        "export_url": reverse("ui-export") + (f"?{export_params.urlencode()}" if export_params else ""),
    }
    template = "notifications/_results.html" if request.GET.get("fragment") else "notifications/list.html"
    return render(request, template, context, status=200 if valid else 400)


def _with_list_urls(groups: list[FailureGroup], form: NotificationFilterForm) -> list[dict[str, Any]]:
    """Each group with the link to its notifications: the Dead letter list under the same filters and its cause."""
    filters = form.query_values()
    rows = []
    for group in groups:
        url = None
        if group.error:  # an empty cause is no filter
            url = list_url({
                "tab": TAB_DEAD, **filters, "channel": group.channel, "cause_kind": group.kind, "cause": group.error,
            })
        rows.append({"group": group, "list_url": url})
    return rows


@login_required
def export_csv(request: HttpRequest) -> HttpResponseBase:
    """Every notification the list shows for these filters (all pages), as CSV."""
    form = NotificationFilterForm(request.GET)
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(map(str, errors))}" for name, errors in form.errors.items())
        return HttpResponse(f"Not exported: {problems}", status=400, content_type="text/plain; charset=utf-8")
    name = "dead-letter" if form.selected_tab == TAB_DEAD else "notifications"
    return csv_response(CsvExport(form.service_filters()), name)


def _timeline(history: EventHistory) -> list[dict[str, Any]]:
    entries = [
        {"at": attempt.started_at, "kind": "attempt", "attempt": attempt} for attempt in history.attempts
    ] + [
        {"at": action.created_at, "kind": "action", "action": action} for action in history.operator_actions
    ]
    return sorted(entries, key=lambda entry: entry["at"])


@login_required
def notification_detail(request: HttpRequest, event_id: str) -> HttpResponse:
    try:
        history = event_with_history(event_id)
    except EventNotFound:
        raise Http404(f"notification {event_id} not found") from None
    return render(request, "notifications/detail.html", {
        "event": history.event,
        "timeline": _timeline(history),
        "can_change": request.user.has_perm(CHANGE_PERMISSION),
        # Escaped as a URL: an id with % or / in it is percent-encoded in the path (notifications.web.urls).
        "return_to": request.get_full_path(),
    })
