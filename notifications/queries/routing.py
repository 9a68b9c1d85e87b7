"""Which destinations an alert goes to: the routes, evaluated in order (docs/DESIGN.md, "Routing").

Enabled routes are tried by position (ties by id). A route matches when every criterion it sets matches: the type is
one of `types`, the severity one of `severities` (an alert without severity matches only routes that set none), the
certificate id matches one of the `certificate_ids` globs, and every key of `labels` is on the alert with an equal or
glob-matching value. A matching route adds its live, enabled destinations (each once, in order) and ends the
evaluation unless it has `continue_matching`. When no other route matched, the default route's destinations are used.
An alert with nowhere to go is refused (errors.Unprocessable), never dropped.

The routes and their destinations are cached per process and kept while ConfigVersion, bumped in the transaction of
every change of a route or destination, still holds the number they were read under: one indexed read per evaluation
(an alert's comes with the lock of its destinations, operations.alerts), and a change in any process takes effect for
the next alert in every other.
"""
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from notifications.errors import InvalidInput, RouteNotFound, Unprocessable
from notifications.models import ConfigVersion, Destination, EventType, Route, Severity, labels_problem

# What a route's `match` may hold, and its bounds (a route is read for every alert: keep each one small).
MATCH_CRITERIA = ("types", "severities", "certificate_ids", "labels")
MAX_CERTIFICATE_GLOBS = 100
MAX_GLOB_LENGTH = 255


@dataclass(frozen=True)
class Alert:
    """What routes match on."""

    type: str
    severity: str | None = None
    certificate_id: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Routing:
    """Where an alert goes: (destination name, channel) in order, the routes that sent it there, and the
    configuration version of the routes it was evaluated by."""

    destinations: list[tuple[str, str]]
    routes: list[str]
    version: int = 0


@dataclass(frozen=True)
class RouteRule:
    """A route as evaluation reads it: its criteria as sets, its usable destinations as (name, channel)."""

    name: str
    types: frozenset[str]
    severities: frozenset[str]
    certificate_ids: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    destinations: tuple[tuple[str, str], ...]
    continue_matching: bool

    def matches(self, alert: Alert) -> bool:
        if self.types and alert.type not in self.types:
            return False
        if self.severities and alert.severity not in self.severities:
            return False
        if self.certificate_ids and not (
            alert.certificate_id and any(fnmatchcase(alert.certificate_id, glob) for glob in self.certificate_ids)
        ):
            return False
        for key, wanted in self.labels:
            value = alert.labels.get(key)
            if value is None or not (value == wanted or fnmatchcase(value, wanted)):
                return False
        return True


def route_destinations(route: Route) -> list[Destination]:
    """A route's destinations in the order its alerts' events are made: by name, as Python compares them (not the
    database's collation, which differs between installations)."""
    return sorted(route.destinations.all(), key=lambda destination: destination.name)


def _rule(route: Route) -> RouteRule:
    match = route.match if isinstance(route.match, dict) else {}
    return RouteRule(
        name=route.name,
        types=frozenset(match.get("types") or ()),
        severities=frozenset(match.get("severities") or ()),
        certificate_ids=tuple(match.get("certificate_ids") or ()),
        labels=tuple((match.get("labels") or {}).items()),
        destinations=tuple(
            (destination.name, destination.channel)
            for destination in route_destinations(route)
            if destination.enabled and destination.deleted_at is None
        ),
        continue_matching=route.continue_matching,
    )


@dataclass(frozen=True)
class RouteTable:
    """The enabled routes in evaluation order, and the default route (if enabled), read under `version`."""

    version: int
    ordered: tuple[RouteRule, ...]
    default: RouteRule | None


def _load(version: int) -> RouteTable:
    routes = (
        Route.objects.filter(enabled=True)
        .order_by("position", "id")
        .prefetch_related("destinations")
    )
    ordered, default = [], None
    for route in routes:
        if route.is_default:
            default = _rule(route)
        else:
            ordered.append(_rule(route))
    return RouteTable(version=version, ordered=tuple(ordered), default=default)


_lock = threading.Lock()
_table: RouteTable | None = None


def route_table() -> RouteTable:
    """The enabled routes as of the stored configuration version, read again only when that number changed.

    The version is read before the routes: routes newer than their version cost one more reload, never a stale
    table kept."""
    global _table
    version = ConfigVersion.objects.current()
    table = _table
    if table is not None and table.version == version:
        return table
    with _lock:
        if _table is None or _table.version != version:
            _table = _load(version)
        return _table


def cached_route_table() -> RouteTable:
    """This process's table as last read, without asking whether it is current: for a caller that compares its
    `version` with the stored one in a statement of its own (operations.alerts); read when there is none."""
    return _table or route_table()


def forget_route_table() -> None:
    """Drop this process's table. The stored version only grows, so production never needs it; a test database
    rolled back between tests returns to an earlier number with other rows."""
    global _table
    with _lock:
        _table = None


def evaluate(alert: Alert, table: RouteTable | None = None) -> Routing:
    """Where `alert` goes by `table` (the current routes when not given). Raises Unprocessable, saying why, when it
    would go nowhere."""
    table = table or route_table()
    destinations: dict[tuple[str, str], None] = {}
    matched: list[str] = []
    for rule in table.ordered:
        if not rule.matches(alert):
            continue
        matched.append(rule.name)
        destinations.update(dict.fromkeys(rule.destinations))
        if not rule.continue_matching:
            break
    if not matched:
        if table.default is None:
            raise Unprocessable({
                "routes": "no route matched and there is no default route; add a route for this alert "
                "or a default route (GET /api/v1/routes lists them)"
            })
        matched.append(table.default.name)
        destinations.update(dict.fromkeys(table.default.destinations))
    if not destinations:
        raise Unprocessable({
            "routes": f"the matching routes ({', '.join(matched)}) have no enabled destination; "
            "add one to them, or enable theirs"
        })
    return Routing(destinations=list(destinations), routes=matched, version=table.version)


# --- the routes as operators see them ----------------------------------------------------------

# Route ids are PostgreSQL bigints: a larger number names no route (and must not reach the database).
_LARGEST_ID = 2**63 - 1


def routes_in_order() -> list[Route]:
    """Every route, enabled or not, in evaluation order (the default route last), with its destinations."""
    return list(
        Route.objects.order_by("is_default", "position", "id")
        .prefetch_related("destinations")
    )


def get_route(route_id: object, *, for_change: bool = False) -> Route:
    """The route `route_id` (locked for the transaction with `for_change`); RouteNotFound when there is none."""
    if isinstance(route_id, bool) or not isinstance(route_id, int) or not 0 < route_id <= _LARGEST_ID:
        raise RouteNotFound(route_id)
    routes = Route.objects.prefetch_related("destinations")
    route = (routes.select_for_update() if for_change else routes).filter(id=route_id).first()
    if route is None:
        raise RouteNotFound(route_id)
    return route


# --- what a route's match may be -------------------------------------------------------------


def _string_list(
    value: object, what: str, one: str, allowed: Sequence[str] | None = None
) -> tuple[list[str], str | None]:
    """`value` as a list of distinct strings in order, or the problem with it."""
    if not isinstance(value, list):
        return [], f"must be a list of {what}"
    items: list[str] = []
    for item in value:
        if not isinstance(item, str):
            return [], f"must be a list of {what}; {str(item)[:40]!r} is not a string"
        if allowed is not None and item not in allowed:
            return [], f"unknown {one} {item[:70]!r}; expected some of {', '.join(allowed)}"
        if item not in items:
            items.append(item)
    return items, None


def _glob_problem(glob: str) -> str | None:
    if not glob or len(glob) > MAX_GLOB_LENGTH or any(ch in glob for ch in "\r\n\x00"):
        return f"each glob must be one line of 1 to {MAX_GLOB_LENGTH} characters"
    return None


def clean_match(match: object) -> dict[str, object]:
    """A route's `match` as stored: known criteria only, empty ones left out, lists without repeats.

    Raises InvalidInput with a message per criterion (match.types, match.labels…)."""
    if not isinstance(match, Mapping):
        raise InvalidInput({
            "match": f"must be an object with some of {', '.join(MATCH_CRITERIA)}, "
            'e.g. {"types": ["Revocation"], "labels": {"team": "payments"}}'
        })
    errors: dict[str, str] = {}
    cleaned: dict[str, object] = {}
    for key in match:
        if key not in MATCH_CRITERIA:
            errors[f"match.{str(key)[:70]}"] = f"unknown criterion; a route matches on {', '.join(MATCH_CRITERIA)}"
    for key, one, allowed in (
        ("types", "type", EventType.values),
        ("severities", "severity", Severity.values),
        ("certificate_ids", "glob", None),
    ):
        if key not in match:
            continue
        what = "globs" if allowed is None else key
        items, problem = _string_list(match[key], what, one, allowed)
        if allowed is None and not problem:
            problem = next(filter(None, map(_glob_problem, items)), None)
            if not problem and len(items) > MAX_CERTIFICATE_GLOBS:
                problem = f"has {len(items)} globs; at most {MAX_CERTIFICATE_GLOBS} are allowed"
        if problem:
            errors[f"match.{key}"] = problem
        elif items:
            cleaned[key] = items
    if "labels" in match:
        labels = match["labels"]
        problem = labels_problem(labels)
        if not problem and isinstance(labels, Mapping) and any(not value for value in labels.values()):
            problem = 'each label needs a value or glob to match ("*": any value)'
        if problem:
            errors["match.labels"] = problem.replace("the value", "the value or glob")
        elif labels:
            cleaned["labels"] = dict(labels)
    if errors:
        raise InvalidInput(errors)
    return cleaned
