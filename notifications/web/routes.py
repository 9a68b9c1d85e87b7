"""The Routes page: the routes in evaluation order with adding, editing, deleting and moving one, and "Try an alert",
which shows where an alert would go (the routes/test evaluation) without creating anything."""
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from notifications.errors import InvalidInput, RouteNotFound, ServiceError, Unprocessable
from notifications.models import EventType, Route, Severity
from notifications.operations.alerts import route_alert
from notifications.operations.routes import create_route, delete_route, reorder_routes, update_route
from notifications.queries.destinations import destination_list
from notifications.queries.routing import Routing, get_route, route_destinations, routes_in_order
from notifications.web.common import CHANGE_PERMISSION, actor_of, change_view
from notifications.web.config_forms import RouteForm, TryAlertForm, route_initial, show_refusal

# route_alert checks a whole alert, message included; trying one needs none.
TRY_MESSAGE = "Trying the routes from the web UI"
TYPE_NAMES = dict(EventType.choices)
SEVERITY_NAMES = dict(Severity.choices)


def _list_url() -> str:
    return reverse("ui-routes")


def criteria(route: Route) -> list[str]:
    """A route's match in words, one criterion each; empty when it matches every alert."""
    match = route.match if isinstance(route.match, dict) else {}
    words = []
    if match.get("types"):
        words.append("type " + " or ".join(TYPE_NAMES.get(value, value) for value in match["types"]))
    if match.get("severities"):
        words.append("severity " + " or ".join(SEVERITY_NAMES.get(value, value) for value in match["severities"]))
    if match.get("certificate_ids"):
        words.append("certificate " + " or ".join(match["certificate_ids"]))
    words += [f"label {key}={value}" for key, value in (match.get("labels") or {}).items()]
    return words


def _try(form: TryAlertForm) -> tuple[Routing | None, str]:
    """Where the alert of a valid form would go, or why nowhere."""
    data = form.cleaned_data
    try:
        return route_alert(
            type=data["type"], message=TRY_MESSAGE, certificate_id=data["certificate_id"] or None,
            severity=data["severity"] or None, labels=data["labels"],
        ), ""
    except InvalidInput as exc:
        return None, "; ".join(exc.errors.values())


@login_required
def route_page(request: HttpRequest) -> HttpResponse:
    routes = routes_in_order()
    ordered = [route for route in routes if not route.is_default]
    rows = [
        {
            "route": route, "criteria": criteria(route),
            "destinations": [destination.name for destination in route_destinations(route)],
            "first": not route.is_default and route is ordered[0],
            "last": not route.is_default and route is ordered[-1],
        }
        for route in routes
    ]
    tried = "type" in request.GET
    try_form = TryAlertForm(request.GET if tried else None)
    routing, refusal, status = None, "", 200
    if tried:
        if try_form.is_valid():
            routing, refusal = _try(try_form)
            status = 422 if refusal else 200
        else:
            status = 400
    return render(request, "notifications/routes.html", {
        "rows": rows, "try_form": try_form, "tried": tried and try_form.is_valid(), "routing": routing,
        "refusal": refusal, "can_change": request.user.has_perm(CHANGE_PERMISSION),
    }, status=status)


def _route(route_id: int) -> Route:
    try:
        return get_route(route_id)
    except RouteNotFound:
        raise Http404(f"route {route_id} not found") from None


def _destination_names() -> list[str]:
    return [row["name"] for row in destination_list()]


def _form_page(request: HttpRequest, form: RouteForm, route: Route | None) -> HttpResponse:
    return render(
        request, "notifications/route_form.html", {"form": form, "route": route},
        status=400 if form.is_bound and form.errors else 200,
    )


def _arguments(form: RouteForm) -> dict[str, Any]:
    data = form.cleaned_data
    return {
        "name": data["name"], "match": form.match(), "destinations": data["destinations"],
        "continue_matching": data["continue_matching"], "enabled": data["enabled"], "is_default": data["is_default"],
    }


@login_required
@permission_required(CHANGE_PERMISSION, raise_exception=True)
@require_http_methods(["GET", "POST"])
def route_add(request: HttpRequest) -> HttpResponse:
    form = RouteForm(request.POST if request.method == "POST" else None, destination_names=_destination_names())
    if request.method == "POST" and form.is_valid():
        try:
            route = create_route(**_arguments(form), actor=actor_of(request))
        except InvalidInput as exc:
            show_refusal(form, exc)
        else:
            messages.success(request, f"Added route {route.name}; it takes effect for the next alert.")
            return redirect(_list_url())
    return _form_page(request, form, None)


@login_required
@permission_required(CHANGE_PERMISSION, raise_exception=True)
@require_http_methods(["GET", "POST"])
def route_edit(request: HttpRequest, route_id: int) -> HttpResponse:
    route = _route(route_id)
    current = [destination.name for destination in route_destinations(route)]
    form = RouteForm(
        request.POST if request.method == "POST" else None, initial=route_initial(route, current),
        # A destination removed since stays choosable until the form is saved without it.
        destination_names=dict.fromkeys([*_destination_names(), *current]),
    )
    if request.method == "POST" and form.is_valid():
        try:
            route = update_route(route.id, **_arguments(form), actor=actor_of(request))
        except InvalidInput as exc:
            show_refusal(form, exc)
        except RouteNotFound:
            raise Http404(f"route {route_id} not found") from None
        else:
            messages.success(request, f"Saved route {route.name}.")
            return redirect(_list_url())
    return _form_page(request, form, route)


@login_required
@permission_required(CHANGE_PERMISSION, raise_exception=True)
@require_http_methods(["GET", "POST"])
def route_delete(request: HttpRequest, route_id: int) -> HttpResponse:
    """GET: confirm. POST: delete."""
    route = _route(route_id)
    if request.method != "POST":
        return render(request, "notifications/route_delete.html", {"route": route, "criteria": criteria(route)})
    try:
        delete_route(route.id, actor=actor_of(request))
    except ServiceError as exc:
        messages.error(request, f"Not deleted: {exc.message}.")
    else:
        messages.success(request, f"Deleted route {route.name}; the routes below it moved up.")
    return redirect(_list_url())


@change_view
def route_move(request: HttpRequest, route_id: int, direction: str) -> HttpResponse:
    """Swap a route with the one above ("up") or below ("down") in evaluation order."""
    order = [route.id for route in routes_in_order() if not route.is_default]
    if route_id not in order:
        messages.error(request, "Not moved: that route is gone or is the default route, which is always last.")
        return redirect(_list_url())
    index = order.index(route_id)
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(order):
        order[index], order[other] = order[other], order[index]
        try:
            reorder_routes(order, actor=actor_of(request))
        except Unprocessable as exc:
            # Another operator changed the routes meanwhile.
            messages.error(request, f"Not moved: {exc.message}. Reload the page and try again.")
        else:
            messages.success(request, f"Moved route {_route(route_id).name} {direction}.")
    return redirect(_list_url())
