"""The Destinations page: every live destination with its state and latest outcomes, and adding, editing, testing
and removing one (pausing and resuming are the dashboard's views). Environment destinations are read-only here as
everywhere; their secrets, like every stored one's, are write-only."""
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from notifications.errors import DestinationNotFound, InvalidInput, ServiceError
from notifications.models import Channel
from notifications.operations.destinations import (
    create_destination,
    delete_destination,
    send_test,
    update_destination,
)
from notifications.queries.destination_health import HEALTH_WINDOW, destination_states
from notifications.queries.destinations import DestinationRow, destination_list, get_destination
from notifications.web.common import CHANGE_PERMISSION, actor_of, change_view
from notifications.web.config_forms import DestinationForm, show_refusal


def _list_url() -> str:
    return reverse("ui-destinations")


@login_required
def destination_page(request: HttpRequest) -> HttpResponse:
    rows = {row["name"]: row for row in destination_list()}
    destinations = [{**state, "row": rows.get(state["name"])} for state in destination_states()]
    return render(request, "notifications/destinations.html", {
        "destinations": destinations,
        "can_change": request.user.has_perm(CHANGE_PERMISSION),
        "health_window_days": HEALTH_WINDOW.days,
        "channels": Channel.values,
        "return_to": request.get_full_path(),
    })


def _stored(name: str) -> DestinationRow:
    """The live destination `name` for the edit and remove pages; 404 when there is none."""
    try:
        return get_destination(name)
    except DestinationNotFound:
        raise Http404(f"no destination {name!r}") from None


def _read_only(request: HttpRequest, row: DestinationRow) -> HttpResponse:
    messages.error(
        request, f"{row['name']} is defined by environment variables: change them and restart the service to "
        "change it (docs/channels.md).",
    )
    return redirect(_list_url())


@login_required
@permission_required(CHANGE_PERMISSION, raise_exception=True)
@require_http_methods(["GET", "POST"])
def destination_add(request: HttpRequest) -> HttpResponse:
    """First the channel (?channel=…), then the form made of that channel's fields."""
    channel = request.GET.get("channel") or request.POST.get("channel") or ""
    if channel not in Channel.values:
        return render(request, "notifications/destination_channel.html", {"channels": Channel.values})
    form = DestinationForm(request.POST if request.method == "POST" else None, channel=channel)
    if request.method == "POST" and form.is_valid():
        try:
            create_destination(
                name=form.cleaned_data["name"], channel=channel, config=form.config(),
                enabled=form.cleaned_data["enabled"], description=form.cleaned_data["description"],
                actor=actor_of(request),
            )
        except InvalidInput as exc:
            show_refusal(form, exc)
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Added destination {form.cleaned_data['name']} ({channel}).")
            return redirect(_list_url())
    return _form_page(request, form, adding=True)


def _form_page(request: HttpRequest, form: DestinationForm, *, adding: bool, name: str = "") -> HttpResponse:
    return render(
        request, "notifications/destination_form.html",
        {"form": form, "adding": adding, "name": name, "channel": form.channel},
        status=400 if form.is_bound and form.errors else 200,
    )


@login_required
@permission_required(CHANGE_PERMISSION, raise_exception=True)
@require_http_methods(["GET", "POST"])
def destination_edit(request: HttpRequest, name: str) -> HttpResponse:
    row = _stored(name)
    if row["from_environment"]:
        return _read_only(request, row)
    initial: dict[str, Any] = {**row["config"], "description": row["description"], "enabled": row["enabled"]}
    form = DestinationForm(
        request.POST if request.method == "POST" else None, initial=initial, channel=row["channel"],
        secrets_set=row["secrets_set"], adding=False,
    )
    if request.method == "POST" and form.is_valid():
        try:
            update_destination(
                name, config=form.config(), enabled=form.cleaned_data["enabled"],
                description=form.cleaned_data["description"], actor=actor_of(request),
            )
        except InvalidInput as exc:
            show_refusal(form, exc)
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Saved destination {name}.")
            return redirect(_list_url())
    return _form_page(request, form, adding=False, name=name)


@login_required
@permission_required(CHANGE_PERMISSION, raise_exception=True)
@require_http_methods(["GET", "POST"])
def destination_remove(request: HttpRequest, name: str) -> HttpResponse:
    """GET: confirm. POST: remove (refused while it has unsent notifications)."""
    row = _stored(name)
    if row["from_environment"]:
        return _read_only(request, row)
    if request.method != "POST":
        return render(request, "notifications/destination_remove.html", {"destination": row})
    try:
        delete_destination(name, actor=actor_of(request))
    except ServiceError as exc:
        messages.error(request, f"Not removed: {exc.message}.")
    else:
        messages.success(request, f"Removed destination {name}; the routes that named it no longer do.")
    return redirect(_list_url())


@change_view
def destination_test(request: HttpRequest, name: str) -> HttpResponse:
    """One real delivery of a test message; the outcome comes back as a message on the list."""
    try:
        outcome = send_test(name, actor=actor_of(request))
    except ServiceError as exc:
        messages.error(request, f"Not tested: {exc.message}.")
        return redirect(_list_url())
    status = f"HTTP {outcome.http_status}" if outcome.http_status else "no HTTP status"
    summary = f"Test of {name}: {outcome.outcome}, {status}, {outcome.duration_ms} ms"
    if outcome.outcome == "ok":
        messages.success(request, f"{summary}.")
    else:
        messages.error(request, f"{summary}: {outcome.error}")
    return redirect(_list_url())
