"""`notifications routes list|test` and `notifications alert`: where alerts go, and raising one."""
from collections.abc import Sequence
from typing import Any

from django.core.management.base import CommandError
from tabulate import tabulate

from notifications.cli.common import (
    NOT_FOUND_OR_REFUSED,
    TYPE_CHOICE,
    USAGE,
    Subcommands,
    UsageParser,
    as_json,
    choice,
    delivery_hint,
    operator,
    shorten,
)
from notifications.errors import InvalidInput, Unprocessable
from notifications.models import Route, Severity
from notifications.operations.alerts import create_alert, route_alert
from notifications.queries.routing import route_destinations, routes_in_order
from notifications.serializers import AlertResultSerializer, RouteListSerializer, RoutingSerializer

# routes test needs no message; the checks an alert's message passes are the same for any.
TEST_MESSAGE = "routing test"


def labels_of(given: Sequence[str]) -> dict[str, str]:
    """`--label key=value` arguments as a map; a usage error for one without `=`."""
    labels: dict[str, str] = {}
    for text in given:
        key, equals, value = text.partition("=")
        if not equals:
            raise CommandError(
                f"--label {text[:40]!r}: expected KEY=VALUE, e.g. --label team=payments", returncode=USAGE
            )
        labels[key] = value
    return labels


def input_problem(exc: InvalidInput) -> CommandError:
    """A refusal of the routes (nowhere to go: exit 1, as a refusal) or of the alert's input (exit 2, usage)."""
    options = {"routes": "", "labels": "--label "}
    problems = "; ".join(
        f"{options.get(name, '--' + name.replace('_', '-') + ' ')}{text}" for name, text in exc.errors.items()
    )
    if isinstance(exc, Unprocessable):
        return CommandError(problems, returncode=NOT_FOUND_OR_REFUSED)
    return CommandError(f"invalid input: {problems}", returncode=USAGE)


def match_text(route: Route) -> str:
    """A route's criteria on one line, e.g. `types=Revocation severities=critical labels=team=payments`."""
    match = route.match if isinstance(route.match, dict) else {}
    parts = [f"{key}={','.join(match[key])}" for key in ("types", "severities", "certificate_ids") if match.get(key)]
    if match.get("labels"):
        parts.append("labels=" + ",".join(f"{key}={value}" for key, value in match["labels"].items()))
    return " ".join(parts) or "every alert"


def add_alert_arguments(parser: Any) -> None:
    parser.add_argument("--type", required=True, **TYPE_CHOICE)
    parser.add_argument("--severity", **choice(Severity.values))
    parser.add_argument("--certificate-id")
    parser.add_argument(
        "--label", dest="labels", action="append", default=[], metavar="KEY=VALUE",
        help="a label of the alert, e.g. --label team=payments (repeatable)",
    )


class RoutingCommands(Subcommands):
    """routes list|test, alert"""

    @staticmethod
    def add_parsers(commands: Any) -> None:
        group = commands.add_parser("routes", help="the routing rules: list them, try where an alert would go")
        actions = group.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=UsageParser)
        listing = actions.add_parser("list", help="every route in evaluation order (the default route last)")
        listing.add_argument("--json", action="store_true", help="print the REST API's /api/v1/routes JSON")
        trial = actions.add_parser(
            "test", help="where an alert would go, creating nothing",
            description="Evaluate the routes for an alert and print its destinations and the routes that matched; "
            "exit 1 with the reason when it would go nowhere.",
        )
        add_alert_arguments(trial)
        trial.add_argument("--json", action="store_true", help="print the REST API's /api/v1/routes/test JSON")

        alert = commands.add_parser(
            "alert", help="raise an alert: one notification per destination the routes choose",
            description="Create one notification per destination the routes choose, all or none (as POST "
            "/api/v1/alerts). With --dedup-key, a destination that already has a notification with that key keeps it.",
        )
        add_alert_arguments(alert)
        alert.add_argument("--message", required=True)
        alert.add_argument("--recipient", help="e-mail address or target; needed when an Email destination is chosen")
        alert.add_argument("--dedup-key", help="raising it again with the same key creates nothing new")
        alert.add_argument("--json", action="store_true", help="print the REST API's /api/v1/alerts JSON")

    def handle_routes(self, *, action: str, **options: Any) -> None:
        if action == "list":
            self.routes_list(**options)
        else:
            self.routes_test(**options)

    def routes_list(self, *, json: bool, **_: Any) -> None:
        routes = routes_in_order()
        if json:
            self.out(as_json(RouteListSerializer({"data": routes, "total": len(routes)}).data))
            return
        if not routes:
            self.out("no routes yet: alerts have nowhere to go (POST /api/v1/routes or the admin adds them)")
            return
        rows = [
            (
                "default" if route.is_default else route.position, route.name, "yes" if route.enabled else "no",
                "yes" if route.continue_matching else "", shorten(match_text(route), 60),
                ", ".join(destination.name for destination in route_destinations(route)),
            )
            for route in routes
        ]
        self.out(tabulate(rows, headers=("Position", "Name", "Enabled", "Continue", "Match", "Destinations")))

    def routes_test(
        self, *, type: str, severity: str | None, certificate_id: str | None, labels: list[str], json: bool, **_: Any
    ) -> None:
        try:
            routing = route_alert(
                type=type, message=TEST_MESSAGE, certificate_id=certificate_id, severity=severity,
                labels=labels_of(labels),
            )
        except InvalidInput as exc:
            raise input_problem(exc) from None
        if json:
            self.out(as_json(RoutingSerializer(routing).data))
            return
        self.out(f"routes matched: {', '.join(routing.routes)}")
        self.out(tabulate(routing.destinations, headers=("Destination", "Channel")))

    def handle_alert(
        self, *, type: str, severity: str | None, certificate_id: str | None, labels: list[str], message: str,
        recipient: str | None, dedup_key: str | None, json: bool, **_: Any,
    ) -> None:
        try:
            result = create_alert(
                type=type, message=message, certificate_id=certificate_id, severity=severity,
                labels=labels_of(labels), recipient=recipient, dedup_key=dedup_key, actor=operator(),
            )
        except InvalidInput as exc:
            raise input_problem(exc) from None
        if json:
            self.out(as_json(AlertResultSerializer(result).data))
            return
        created = sum(1 for _, new in result.events if new)
        summary = f"alert routed by {', '.join(result.routes)}: {created} notification(s) created"
        existed = len(result.events) - created
        if existed:
            summary += f", {existed} already there with dedup key {dedup_key!r} (nothing new for those)"
        self.out(self.style.SUCCESS(summary))
        rows = [
            (event.id, event.destination, event.channel, "created" if new else "existed", event.status)
            for event, new in result.events
        ]
        self.out(tabulate(rows, headers=("ID", "Destination", "Channel", "", "Status")))
        if created:
            self.out(f"Pending: {delivery_hint('them')}.")
