"""`manage.py notifications …`: list, inspect, send, requeue, mark read and deliver notification events from a shell,
import them from a certctl database, purge old sent ones and repair the stored counts; manage destinations, try the
routes and raise alerts.

A thin entry point (Django finds commands here): the subcommands live in notifications.cli, one module per group.
JSON output has the REST API's shapes (notifications.serializers). Exit codes: 0 ok, 1 not found or refused, 2 usage.
"""
from typing import Any

from django.core.management.base import CommandParser

from notifications.cli.channels import ChannelCommands
from notifications.cli.common import UsageParser
from notifications.cli.destinations import DestinationCommands
from notifications.cli.events import EventCommands
from notifications.cli.routing import RoutingCommands
from notifications.cli.triage import TriageCommands
from notifications.cli.upkeep import UpkeepCommands

GROUPS = (EventCommands, TriageCommands, UpkeepCommands, ChannelCommands, DestinationCommands, RoutingCommands)


class Command(
    EventCommands, TriageCommands, UpkeepCommands, ChannelCommands, DestinationCommands, RoutingCommands
):
    help = "Inspect, send, requeue and deliver notification events. Exit codes: 0 ok, 1 not found or refused, 2 usage."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(
            dest="subcommand", required=True, metavar="SUBCOMMAND", parser_class=UsageParser
        )
        for group in GROUPS:
            group.add_parsers(commands)

    def handle(self, *args: Any, subcommand: str, **options: Any) -> None:
        getattr(self, f"handle_{subcommand.replace('-', '_')}")(**options)
