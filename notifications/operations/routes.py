"""Changing the routes: create, update, delete, reorder. Each writes a ConfigurationAction with its actor and bumps
ConfigVersion in the same transaction, so every process routes the next alert by the new rules
(notifications.queries.routing).

Non-default routes keep the positions 0, 1, 2… in evaluation order; the default route is evaluated last, whatever
its position.
"""
import logging
from collections.abc import Sequence

from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.actors import Actor
from notifications.errors import InvalidInput, Unprocessable
from notifications.models import (
    ConfigurationAction,
    ConfigurationActionKind,
    ConfigurationTarget,
    ConfigVersion,
    Destination,
    Route,
)
from notifications.queries.routing import clean_match, get_route, routes_in_order

log = logging.getLogger("notifications.services")

MAX_ROUTE_NAME = 100
MAX_ROUTE_DESTINATIONS = 100
# The target of a reorder's audit row: it changes every route.
ALL_ROUTES = "*"
CREATE_FIELDS = ["name", "match", "destinations", "continue_matching", "enabled", "is_default", "position"]


def _name_problem(name: object) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return "must not be empty"
    if len(name) > MAX_ROUTE_NAME or any(ch in name for ch in "\r\n\x00"):
        return f"must be one line of at most {MAX_ROUTE_NAME} characters"
    return None


def _destinations(names: object) -> list[Destination]:
    """The live destinations named, in the order given; InvalidInput for a malformed list, Unprocessable naming the
    unknown ones."""
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise InvalidInput({"destinations": "must be a list of destination names"})
    if len(names) > MAX_ROUTE_DESTINATIONS:
        raise InvalidInput({"destinations": f"has {len(names)} names; at most {MAX_ROUTE_DESTINATIONS} are allowed"})
    wanted = list(dict.fromkeys(names))
    Destination.objects.ensure_environment()
    found = {destination.name: destination for destination in Destination.objects.live().filter(name__in=wanted)}
    unknown = [name for name in wanted if name not in found]
    if unknown:
        raise Unprocessable({
            "destinations": f"unknown destination{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(name[:70]) for name in unknown)}; list them at /api/v1/destinations"
        })
    return [found[name] for name in wanted]


def _flag(value: object, name: str, errors: dict[str, str]) -> None:
    if not isinstance(value, bool):
        errors[name] = "must be true or false"


def _audit(route_name: str, action: str, actor: Actor, detail: dict[str, object]) -> None:
    ConfigurationAction.objects.create(
        target_kind=ConfigurationTarget.ROUTE, target=route_name, action=action, actor=actor.name,
        source=actor.source, detail=detail,
    )


def _ordered_ids(excluding: int | None = None) -> list[int]:
    """The non-default routes' ids in evaluation order."""
    ids = Route.objects.filter(is_default=False).order_by("position", "id").values_list("id", flat=True)
    return [route_id for route_id in ids if route_id != excluding]


def _renumber(ids: Sequence[int]) -> None:
    """Give the routes `ids` the positions 0, 1, 2… in that order, writing only those that move."""
    current = dict(Route.objects.filter(id__in=ids).values_list("id", "position"))
    moved = [Route(id=route_id, position=index) for index, route_id in enumerate(ids) if current[route_id] != index]
    Route.objects.bulk_update(moved, ["position"])


def _place(ids: list[int], route_id: int, position: int | None) -> list[int]:
    """`ids` with `route_id` at `position` (None or past the end: last)."""
    index = len(ids) if position is None else min(position, len(ids))
    return [*ids[:index], route_id, *ids[index:]]


def _check_position(position: object, errors: dict[str, str]) -> None:
    if position is not None and (isinstance(position, bool) or not isinstance(position, int) or position < 0):
        errors["position"] = "must be a whole number from 0 (first); leave it out to put the route last"


def _check_default(is_default: bool, match: dict[str, object], excluding: int | None) -> None:
    if not is_default:
        return
    if match:
        raise Unprocessable({
            "match": "the default route takes every alert no other route matched; leave its match empty"
        })
    others = Route.objects.filter(is_default=True)
    if excluding is not None:
        others = others.exclude(id=excluding)
    other = others.values_list("name", flat=True).first()
    if other is not None:
        raise Unprocessable({
            "is_default": f"route {other!r} is the default route already; there is at most one (unset it first)"
        })


def _name_taken(name: str) -> Unprocessable:
    return Unprocessable({"name": f"a route named {name!r} exists already; choose another name"})


def create_route(
    *, name: str, match: object, destinations: object, continue_matching: bool = False, enabled: bool = True,
    is_default: bool = False, position: int | None = None, actor: Actor,
) -> Route:
    """A new route at `position` in evaluation order (None: last), audited."""
    errors: dict[str, str] = {}
    if problem := _name_problem(name):
        errors["name"] = problem
    flags = (("continue_matching", continue_matching), ("enabled", enabled), ("is_default", is_default))
    for flag_name, value in flags:
        _flag(value, flag_name, errors)
    _check_position(position, errors)
    if errors:
        raise InvalidInput(errors)
    name = name.strip()
    cleaned = clean_match(match)
    with transaction.atomic():
        # First: the version row's lock makes concurrent changes of the order take turns.
        ConfigVersion.objects.bump()
        chosen = _destinations(destinations)
        _check_default(is_default, cleaned, None)
        if Route.objects.filter(name=name).exists():
            raise _name_taken(name)
        now = timezone.now()
        try:
            with transaction.atomic():
                route = Route.objects.create(
                    name=name, match=cleaned, continue_matching=continue_matching, enabled=enabled,
                    is_default=is_default, position=0, created_at=now, updated_at=now,
                )
        except IntegrityError:  # a concurrent create took the name or the default
            raise _name_taken(name) from None
        route.destinations.set(chosen)
        if not is_default:
            _renumber(_place(_ordered_ids(excluding=route.id), route.id, position))
        _audit(route.name, ConfigurationActionKind.CREATE, actor, {"fields": CREATE_FIELDS})
    log.info("route %s created by %s via %s", route.name, actor.name, actor.source, extra={"route": route.name})
    route.refresh_from_db()
    return route


def update_route(
    route_id: int, *, name: str | None = None, match: object = None, destinations: object = None,
    continue_matching: bool | None = None, enabled: bool | None = None, is_default: bool | None = None,
    position: int | None = None, actor: Actor,
) -> Route:
    """Change the fields given (None: unchanged), audited with the names of the fields that changed."""
    errors: dict[str, str] = {}
    if name is not None and (problem := _name_problem(name)):
        errors["name"] = problem
    flags = (("continue_matching", continue_matching), ("enabled", enabled), ("is_default", is_default))
    for flag_name, value in flags:
        if value is not None:
            _flag(value, flag_name, errors)
    _check_position(position, errors)
    if errors:
        raise InvalidInput(errors)
    cleaned = clean_match(match) if match is not None else None
    with transaction.atomic():
        ConfigVersion.objects.bump()
        route = get_route(route_id, for_change=True)
        previous_name, was_default = route.name, route.is_default
        changed: list[str] = []
        if name is not None and name.strip() != route.name:
            if Route.objects.filter(name=name.strip()).exclude(id=route.id).exists():
                raise _name_taken(name.strip())
            route.name = name.strip()
            changed.append("name")
        if cleaned is not None and cleaned != route.match:
            route.match = cleaned
            changed.append("match")
        for field_name, value in (
            ("continue_matching", continue_matching), ("enabled", enabled), ("is_default", is_default)
        ):
            if value is not None and value != getattr(route, field_name):
                setattr(route, field_name, value)
                changed.append(field_name)
        _check_default(route.is_default, route.match, route.id)
        if destinations is not None:
            chosen = _destinations(destinations)
            if {d.name for d in chosen} != set(route.destinations.values_list("name", flat=True)):
                route.destinations.set(chosen)
                changed.append("destinations")
        old_order = _ordered_ids()
        others = [other for other in old_order if other != route.id]
        if route.is_default:
            new_order = others
        else:
            kept = None if was_default else old_order.index(route.id)
            new_order = _place(others, route.id, kept if position is None else position)
            route.position = new_order.index(route.id)
            if new_order != old_order and not was_default:
                changed.append("position")
        _renumber(new_order)
        if not changed:
            transaction.set_rollback(True)  # the version bumped for its lock: nothing changed, nothing to count
            return route
        route.updated_at = timezone.now()
        try:
            with transaction.atomic():
                route.save()
        except IntegrityError:  # a concurrent change took the name or the default
            raise _name_taken(route.name) from None
        _audit(
            route.name, ConfigurationActionKind.UPDATE, actor,
            {"fields": changed, **({"previous_name": previous_name} if "name" in changed else {})},
        )
    log.info(
        "route %s updated by %s via %s: %s", route.name, actor.name, actor.source, ", ".join(changed),
        extra={"route": route.name},
    )
    route.refresh_from_db()
    return route


def delete_route(route_id: int, *, actor: Actor) -> None:
    """Remove a route, audited; the others close up their positions."""
    with transaction.atomic():
        ConfigVersion.objects.bump()
        route = get_route(route_id, for_change=True)
        name = route.name
        route.delete()
        _renumber(_ordered_ids())
        _audit(name, ConfigurationActionKind.DELETE, actor, {})
    log.info("route %s deleted by %s via %s", name, actor.name, actor.source, extra={"route": name})


def reorder_routes(route_ids: list[int], *, actor: Actor) -> list[Route]:
    """Put the non-default routes in the order `route_ids` gives (each exactly once), audited; the routes in order."""
    if not isinstance(route_ids, list) or not all(
        isinstance(route_id, int) and not isinstance(route_id, bool) for route_id in route_ids
    ):
        raise InvalidInput({"order": "must be a list of route ids"})
    with transaction.atomic():
        ConfigVersion.objects.bump()
        current = _ordered_ids()
        default_ids = set(Route.objects.filter(is_default=True).values_list("id", flat=True))
        problems = []
        if repeated := sorted({route_id for route_id in route_ids if route_ids.count(route_id) > 1}):
            problems.append(f"lists route {', '.join(map(str, repeated))} more than once")
        if missing := [route_id for route_id in current if route_id not in route_ids]:
            problems.append(f"leaves out route {', '.join(map(str, missing))}")
        if default_listed := [route_id for route_id in route_ids if route_id in default_ids]:
            problems.append(f"lists the default route {default_listed[0]}, which is always evaluated last")
        if unknown := [route_id for route_id in route_ids if route_id not in current and route_id not in default_ids]:
            problems.append(f"lists unknown route {', '.join(map(str, unknown))}")
        if problems:
            raise Unprocessable({
                "order": "must list every route but the default exactly once: it " + "; it ".join(problems)
                + " (GET /api/v1/routes for the current ones)"
            })
        _renumber(route_ids)
        names = dict(Route.objects.filter(id__in=route_ids).values_list("id", "name"))
        _audit(ALL_ROUTES, ConfigurationActionKind.REORDER, actor, {"order": [names[i] for i in route_ids]})
    log.info("routes reordered by %s via %s", actor.name, actor.source)
    return routes_in_order()
