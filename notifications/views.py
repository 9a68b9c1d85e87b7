"""The operator web UI: dashboard, notification list with its Dead letter tab, detail, requeue, mark read / dismiss.

Reading happens here; every change goes through notifications.services. Any logged-in user may mark read and
dismiss (certctl's read-only role may too, and so may read-only API keys); requeueing needs the change permission.
"""
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Page, Paginator
from django.db.models import Count, Max, Q
from django.db.models.functions import TruncHour
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.timesince import timesince
from django.views.decorators.http import require_http_methods, require_POST

from notifications import services
from notifications.api.filters import page_of
from notifications.export import CsvExport, csv_response
from notifications.forms import TAB_DEAD, NotificationFilterForm
from notifications.models import AttemptOutcome, CauseKind, NotificationAttempt, NotificationEvent, Status
from notifications.notifiers import channel_status
from notifications.queries import counts

PAGE_SIZE = 50
CHANGE_PERMISSION = "notifications.change_notificationevent"
SKIPPED_NOTE = "skipped (not failed or dead)"
SKIPPED_READ_NOTE = "skipped (already dismissed or gone)"


def _actor(request):
    return services.Actor(request.user.get_username(), "ui")


def change_view(view):
    """POST only, logged in, and allowed to change notifications (403 otherwise)."""
    return login_required(require_POST(permission_required(CHANGE_PERMISSION, raise_exception=True)(view)))


def acknowledge_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """POST only and logged in: marking read and dismissing need no further permission."""
    return login_required(require_POST(view))


def _back(request, fallback):
    """Where the form asked to return (its list tab, filters and page), if that is a URL on this site."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect(fallback)


def _list_url(params):
    params = {name: value for name, value in params.items() if value}
    return reverse("ui-notifications") + (f"?{urlencode(params)}" if params else "")


# --- dashboard ----------------------------------------------------------------

CHART_HOURS = 24
CHART_HEIGHT = 160
CHART_SERIES = (
    ("sent", "Sent", "series-sent"),
    ("failed", "Failed attempts", "series-failed"),
    ("dead", "Newly dead", "series-dead"),
)


def outcome_chart(now):
    """Attempts per hour over the last 24 hours, laid out as SVG bars (one group of three per hour)."""
    current_hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    first_hour = current_hour - timedelta(hours=CHART_HOURS - 1)
    rows = (
        NotificationAttempt.objects.filter(started_at__gte=first_hour)
        .annotate(hour=TruncHour("started_at", tzinfo=UTC))
        .values("hour")
        .annotate(
            sent=Count("id", filter=Q(outcome=AttemptOutcome.SUCCESS)),
            failed=Count("id", filter=~Q(outcome=AttemptOutcome.SUCCESS)),
            dead=Count("id", filter=Q(resulting_status=Status.DEAD)),
        )
    )
    by_hour = {row["hour"]: row for row in rows}
    hours = []
    for index in range(CHART_HOURS):
        start = first_hour + timedelta(hours=index)
        row = by_hour.get(start, {})
        hours.append({"start": start, **{key: row.get(key, 0) for key, _, _ in CHART_SERIES}})
    peak = max([1] + [hour[key] for hour in hours for key, _, _ in CHART_SERIES])

    group_width, bar_width, left, top = 30, 8, 36, 10
    bars, ticks = [], []
    for index, hour in enumerate(hours):
        x = left + index * group_width + 3
        for offset, (key, label, css) in enumerate(CHART_SERIES):
            height = round(hour[key] / peak * CHART_HEIGHT, 1)
            bars.append({
                "x": x + offset * bar_width, "y": top + CHART_HEIGHT - height, "height": height,
                "width": bar_width - 1, "css": css,
                "title": f"{hour['start']:%H}:00 UTC: {hour[key]} {label.lower()}",
            })
        if index % 3 == 0:
            ticks.append({"x": x + 12, "label": f"{hour['start']:%H}:00"})
    return {
        "hours": hours, "bars": bars, "ticks": ticks, "peak": peak,
        "width": left + CHART_HOURS * group_width + 4, "height": top + CHART_HEIGHT + 24,
        "axis_y": top + CHART_HEIGHT, "top": top, "left": left, "label_y": top + CHART_HEIGHT + 16,
        "legend": [{"label": label, "css": css, "total": sum(h[key] for h in hours)} for key, label, css in CHART_SERIES],
    }


# How far back the channel table looks for a channel's last success and last failure: the attempts of a
# week, read through the started_at index, never the whole history.
CHANNEL_WINDOW = timedelta(days=7)
FAILURE = ~Q(outcome=AttemptOutcome.SUCCESS)


def _latest_attempt(channel: str, outcome: Q, since: datetime, before: datetime) -> datetime | None:
    """The start of the channel's latest attempt matching `outcome` in [since, before), newest first by index."""
    return (
        NotificationAttempt.objects.filter(outcome, event__channel=channel, started_at__gte=since, started_at__lt=before)
        .order_by("-started_at").values_list("started_at", flat=True).first()
    )


def channel_health(now):
    """Per channel: configured or not, last success and last failure within CHANNEL_WINDOW, failure rate over 24 h.

    The last day's attempts answer for most channels; only a channel quiet for a day looks further back.
    """
    since = now - timedelta(hours=24)
    window_start = now - CHANNEL_WINDOW
    stats = {
        row["event__channel"]: row
        for row in NotificationAttempt.objects.filter(started_at__gte=since).order_by().values("event__channel").annotate(
            last_success=Max("started_at", filter=Q(outcome=AttemptOutcome.SUCCESS)),
            last_failure=Max("started_at", filter=FAILURE),
            attempts_24h=Count("id"),
            failures_24h=Count("id", filter=FAILURE),
        )
    }
    health = []
    for channel, (configured, missing) in channel_status().items():
        row = stats.get(channel, {})
        last_success = row.get("last_success") or _latest_attempt(
            channel, Q(outcome=AttemptOutcome.SUCCESS), window_start, since
        )
        last_failure = row.get("last_failure") or _latest_attempt(channel, FAILURE, window_start, since)
        last_error = ""
        if last_failure:
            last_error = (
                NotificationAttempt.objects.filter(FAILURE, event__channel=channel, started_at=last_failure)
                .order_by("-id").values_list("error", flat=True).first()
            ) or ""
        attempts, failures = row.get("attempts_24h", 0), row.get("failures_24h", 0)
        health.append({
            "channel": channel, "configured": configured, "missing": missing,
            "last_success": last_success, "last_failure": last_failure, "last_error": last_error,
            "attempts_24h": attempts, "failures_24h": failures,
            "failure_rate": round(100 * failures / attempts) if attempts else None,
        })
    return health


@login_required
def dashboard(request):
    now = timezone.now()
    summary = services.stats_summary(now=now)
    oldest = summary["oldest_due_retry_at"]
    cards = [
        {"label": "Pending", "count": summary["notifications_pending"], "url": _list_url({"status": Status.PENDING}), "css": "pending"},
        {"label": "Failed (retrying)", "count": summary["notifications_failed"], "url": _list_url({"status": Status.FAILED}), "css": "failed"},
        {
            "label": "Dead letter", "count": summary["notifications_dead_unacknowledged"],
            "url": _list_url({"tab": TAB_DEAD}), "css": "dead",
            "dismissed": summary["notifications_dead"] - summary["notifications_dead_unacknowledged"],
        },
        {"label": "Sent", "count": summary["notifications_sent"], "url": _list_url({"status": Status.SENT}), "css": "sent"},
    ]
    return render(request, "notifications/dashboard.html", {
        "summary": summary,
        "cards": cards,
        "oldest_due_age": timesince(oldest, now, depth=2) if oldest else None,
        "chart": outcome_chart(now),
        "channels": _with_state(channel_health(now)),
        "can_change": request.user.has_perm(CHANGE_PERMISSION),
        "channel_window_days": CHANNEL_WINDOW.days,
        "retention": retention_in_words(settings.CERTCTL_NOTIFICATION_RETENTION),
    })


def retention_in_words(retention: timedelta) -> str | None:
    """CERTCTL_NOTIFICATION_RETENTION in words for the dashboard; None when everything is kept."""
    if not retention:
        return None
    if retention % timedelta(days=1):
        return timesince(timezone.now() - retention, timezone.now(), depth=2)
    return f"{retention.days} day{'s' if retention.days != 1 else ''}"


def _with_state(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """The dashboard's channel rows with each channel's breaker or pause state."""
    states = {state["name"]: state for state in services.channel_states()}
    return [{**row, "breaker": states[str(row["channel"])]} for row in rows]


@change_view
def channel_pause(request: HttpRequest, channel: str) -> HttpResponse:
    try:
        if services.pause_channel(channel, _actor(request)):
            messages.success(request, f"Paused {channel}: its notifications wait, spending no retries, until you resume it.")
        else:
            messages.info(request, f"{channel} was already paused.")
    except services.ServiceError as exc:
        messages.error(request, f"Not paused: {exc.message}.")
    return redirect("ui-dashboard")


@change_view
def channel_resume(request: HttpRequest, channel: str) -> HttpResponse:
    try:
        if services.resume_channel(channel, _actor(request)):
            messages.success(request, f"Resumed {channel}: its waiting notifications are delivered now.")
        else:
            messages.info(request, f"{channel} was not paused.")
    except services.ServiceError as exc:
        messages.error(request, f"Not resumed: {exc.message}.")
    return redirect("ui-dashboard")


# --- notifications list and detail --------------------------------------------


class CountedPaginator(Paginator):
    """A paginator told its count, so that a page of a year of history does not count it all, and reading
    a deep page through the index (notifications.api.filters.page_of)."""

    def __init__(self, object_list: Any, per_page: int, count: int):
        super().__init__(object_list, per_page)
        self.known_count = count

    @cached_property
    def count(self) -> int:
        return self.known_count

    def page(self, number: Any) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        return self._get_page(page_of(self.object_list, bottom, self.per_page), number, self)


def _count(form: NotificationFilterForm) -> int:
    """What the form's filters select: from notifications.counts when they are status, channel and tab only."""
    filters = form.service_filters()
    total = None if filters is None else counts.matching(filters)
    return form.queryset().count() if total is None else total


@login_required
def notification_list(request):
    form = NotificationFilterForm(request.GET)
    valid = form.is_valid()
    grouped = valid and form.grouped
    # Group by cause lists every group at once: no page, no count of the list.
    groups = _with_list_urls(services.failure_groups(form.service_filters()), form) if grouped else []
    page = None
    if not grouped:
        events = form.queryset() if valid else NotificationEvent.objects.none()
        page = CountedPaginator(events, PAGE_SIZE, _count(form) if valid else 0).get_page(request.GET.get("page"))
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


def _with_list_urls(groups: list[services.FailureGroup], form: NotificationFilterForm) -> list[dict[str, Any]]:
    """Each group with the link to its notifications: the Dead letter list under the same filters and its cause."""
    filters = form.query_values()
    rows = []
    for group in groups:
        url = None
        if group.error:  # an empty cause is no filter
            url = _list_url({
                "tab": TAB_DEAD, **filters, "channel": group.channel, "cause_kind": group.kind, "cause": group.error,
            })
        rows.append({"group": group, "list_url": url})
    return rows


@login_required
def export_csv(request: HttpRequest) -> HttpResponse:
    """Every notification the list shows for these filters (all pages), as CSV."""
    form = NotificationFilterForm(request.GET)
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        return HttpResponse(f"Not exported: {problems}", status=400, content_type="text/plain; charset=utf-8")
    name = "dead-letter" if form.selected_tab == TAB_DEAD else "notifications"
    return csv_response(CsvExport(form.service_filters()), name)


def _timeline(event):
    entries = [
        {"at": attempt.started_at, "kind": "attempt", "attempt": attempt}
        for attempt in event.attempts.all()
    ] + [
        {"at": action.created_at, "kind": "action", "action": action}
        for action in event.operator_actions.all()
    ]
    return sorted(entries, key=lambda entry: entry["at"])


@login_required
def notification_detail(request, event_id):
    try:
        event = services.get_event(event_id)
    except services.EventNotFound:
        raise Http404(f"notification {event_id} not found") from None
    return render(request, "notifications/detail.html", {
        "event": event,
        "timeline": _timeline(event),
        "can_change": request.user.has_perm(CHANGE_PERMISSION),
        # Escaped as a URL: an id with % or / in it is percent-encoded in the path (notifications.urls).
        "return_to": request.get_full_path(),
    })


# --- changes (all through services) -------------------------------------------


@change_view
def requeue(request, event_id):
    try:
        services.requeue_event(event_id, actor=_actor(request))
    except services.ServiceError as exc:
        messages.error(request, f"Not requeued: {exc.message}.")
    else:
        messages.success(request, f"Requeued {event_id}: it is pending again and will be delivered shortly.")
    return _back(request, reverse("ui-notifications"))


@acknowledge_view
def mark_read(request, event_id):
    """Mark read; for a dead event this is "Dismiss": it leaves the Dead letter tab. Delivery is untouched."""
    try:
        event = services.mark_read(event_id, actor=_actor(request))
    except services.ServiceError as exc:
        messages.error(request, f"Not marked read: {exc.message}.")
    else:
        if event.status == Status.DEAD:
            messages.success(request, f"Dismissed {event_id}: it left the Dead letter tab (Show dismissed brings it back).")
        else:
            messages.success(request, f"Marked {event_id} as read.")
    return _back(request, reverse("ui-notifications"))


def _report_bulk(request, result):
    messages.success(request, f"{result.requeued} requeued, {result.skipped} {SKIPPED_NOTE}.")


def _on_selected(request: HttpRequest, bulk_action: Callable, report: Callable, done: str, button: str) -> HttpResponse:
    """Run a bulk service action on the ticked rows, say what it did, and go back to the list."""
    ids = request.POST.getlist("ids")
    if not ids:
        messages.error(request, f"Nothing {done}: tick the checkbox of at least one notification, then press {button}.")
    else:
        try:
            report(request, bulk_action(actor=_actor(request), ids=ids))
        except services.InvalidInput as exc:
            messages.error(request, f"Nothing {done}: {exc.message}.")
    return _back(request, _list_url({"tab": TAB_DEAD}))


@change_view
def requeue_selected(request):
    return _on_selected(request, services.requeue_events, _report_bulk, "requeued", "Requeue selected")


def _report_dismissed(request: HttpRequest, result: services.BulkReadResult) -> None:
    messages.success(request, f"{result.marked_read} dismissed, {result.skipped} {SKIPPED_READ_NOTE}.")


@acknowledge_view
def dismiss_selected(request: HttpRequest) -> HttpResponse:
    return _on_selected(request, services.mark_read_events, _report_dismissed, "dismissed", "Dismiss selected")


def _dead_tab_form(request: HttpRequest, ignore: tuple[str, ...] = ()) -> NotificationFilterForm:
    data = (request.POST if request.method == "POST" else request.GET).copy()
    data["tab"] = TAB_DEAD
    for name in ("page", "csrfmiddlewaretoken", *ignore):
        data.pop(name, None)
    return NotificationFilterForm(data)


def _on_matching(
    request: HttpRequest, form: NotificationFilterForm, template: str, bulk_action: Callable, report: Callable, done: str
) -> HttpResponse:
    """GET: confirm with the count of what the Dead letter tab shows for these filters. POST: run the bulk
    service action on it."""
    if not form.is_valid():
        return render(request, template, {"form": form}, status=400)
    back_to = _list_url({"tab": TAB_DEAD, **form.query_values()})
    if request.method != "POST":
        return render(request, template, {
            "form": form, "count": _count(form), "filters_in_words": form.describe(),
            "hidden": form.query_values(), "back_to": back_to,
        })
    try:
        result = bulk_action(actor=_actor(request), filters=form.service_filters())
    except services.InvalidInput as exc:
        messages.error(request, f"Nothing {done}: {exc.message}. Narrow the filters and try again.")
    else:
        report(request, result)
    return redirect(back_to)


@login_required
@require_http_methods(["GET", "POST"])
def dismiss_matching(request: HttpRequest) -> HttpResponse:
    # Dismissing what is already dismissed would change nothing.
    form = _dead_tab_form(request, ignore=("dismissed",))
    return _on_matching(request, form, "notifications/dismiss_matching.html", services.mark_read_events, _report_dismissed, "dismissed")


@login_required
@require_http_methods(["GET", "POST"])
@permission_required(CHANGE_PERMISSION, raise_exception=True)
def requeue_matching(request):
    form = _dead_tab_form(request)
    return _on_matching(request, form, "notifications/requeue_matching.html", services.requeue_events, _report_bulk, "requeued")


def _group_form(request: HttpRequest) -> tuple[NotificationFilterForm, str, str, str]:
    """The tab's filters, and the group a Requeue group or Dismiss group button names: channel, kind, cause."""
    form = _dead_tab_form(request, ignore=("channel_group", "kind_group", "error_group", "next", "view"))
    return form, *(request.POST.get(name, "") for name in ("channel_group", "kind_group", "error_group"))


def _groups_url(form: NotificationFilterForm) -> str:
    return _list_url({"tab": TAB_DEAD, "view": "groups", **(form.query_values() if form.is_valid() else {})})


@change_view
def requeue_group(request: HttpRequest) -> HttpResponse:
    """Requeue every dead notification of one failure group (channel, kind and cause) under the tab's filters."""
    form, channel, kind, cause = _group_form(request)
    if not form.is_valid() or not channel or kind not in CauseKind.values:
        messages.error(request, "Nothing requeued: the group or its filters were not valid; reload the page and try again.")
    else:
        _report_bulk(request, services.requeue_group(_actor(request), channel, kind, cause, form.service_filters()))
    return _back(request, _groups_url(form))


@acknowledge_view
def dismiss_group(request: HttpRequest) -> HttpResponse:
    """Dismiss every dead notification of one failure group under the tab's filters."""
    form, channel, kind, cause = _group_form(request)
    if not form.is_valid() or not channel or kind not in CauseKind.values:
        messages.error(request, "Nothing dismissed: the group or its filters were not valid; reload the page and try again.")
    else:
        _report_dismissed(request, services.dismiss_group(_actor(request), channel, kind, cause, form.service_filters()))
    return _back(request, _groups_url(form))
