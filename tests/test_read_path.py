"""One read path for every interface: each list filter is declared once, in the FilterSet, and the CLI's --options
and the MCP tools' arguments are made from that declaration; the API, the CLI and MCP page and count the
notification list through notifications.queries.events.list_page (the stored counts, a page read by its keys)."""
import argparse
import asyncio
import re
from collections.abc import Callable
from typing import Any

import django_filters
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from notifications.filtersets import STATE_FILTERS, NotificationFilterSet
from notifications.management.commands.notifications import Command
from notifications.mcp import answers
from notifications.mcp.arguments import offering_filters
from notifications.mcp.server import MCP_ACTOR, Identity, build_server
from notifications.models import NotificationCount, NotificationEvent, Severity
from tests.cli.conftest import cli
from tests.deliveries import deliver_now
from tests.receivers import Receiver

# Where the filters are offered, and the ones each place leaves out: the dead-letter queue sets the states itself.
CLI_SUBCOMMANDS = {"list": frozenset(), "requeue": STATE_FILTERS, "read": STATE_FILTERS, "groups": STATE_FILTERS}
MCP_TOOLS = {
    "certctl_list_notifications": frozenset(),
    "certctl_requeue_notifications": frozenset(),
    "certctl_mark_notifications_read": frozenset(),
    "certctl_dead_letter_groups": STATE_FILTERS,
}
API_KEY = "read-path-test-key-4f1c"
MakeEvent = Callable[..., NotificationEvent]


def cli_options(subcommand: str) -> dict[str, argparse.Action]:
    """The options of `manage.py notifications SUBCOMMAND`, by the name they are handed over under."""
    parser = Command().create_parser("manage.py", "notifications")
    [subcommands] = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return {action.dest: action for action in subcommands.choices[subcommand]._actions}


def tool_arguments() -> dict[str, dict[str, Any]]:
    """Each MCP tool's arguments, as the SDK publishes them in its input schema."""
    server = build_server(Identity(MCP_ACTOR, admin=True))
    return {tool.name: tool.input_schema["properties"] for tool in asyncio.run(server.list_tools())}


def test_every_filter_of_the_filterset_is_offered_by_the_cli_and_the_mcp_tools() -> None:
    declared = set(NotificationFilterSet.base_filters)
    arguments = tool_arguments()

    for subcommand, left_out in CLI_SUBCOMMANDS.items():
        offered = set(cli_options(subcommand))
        assert declared - left_out <= offered, subcommand
        assert not left_out & offered, subcommand
    for tool, left_out in MCP_TOOLS.items():
        assert declared - left_out <= set(arguments[tool]), tool
        assert not left_out & set(arguments[tool]), tool


@pytest.fixture
def declared_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two filters declared on the FilterSet and nowhere else: a choice and a text."""
    # In the FilterSet's class body a filter takes its attribute's name as field_name; added later, it is given one.
    severity = django_filters.ChoiceFilter(
        field_name="severity", choices=[(value, value) for value in Severity.values],
        help_text="Only events of this severity.",
    )
    recipient = django_filters.CharFilter(
        field_name="recipient", max_length=1024, help_text="Only events to exactly this recipient."
    )
    monkeypatch.setitem(NotificationFilterSet.base_filters, "severity", severity)
    monkeypatch.setitem(NotificationFilterSet.base_filters, "recipient", recipient)


@pytest.mark.usefixtures("declared_filters")
def test_a_filter_declared_on_the_filterset_alone_is_a_cli_option_of_every_selecting_subcommand() -> None:
    for subcommand in CLI_SUBCOMMANDS:
        options = cli_options(subcommand)
        severity, recipient = options["severity"], options["recipient"]
        assert (severity.option_strings, list(severity.choices or ())) == (["--severity"], Severity.values)
        assert severity.help is not None
        assert severity.help.startswith("Only events of this severity.")
        assert (recipient.option_strings, recipient.metavar) == (["--recipient"], "TEXT")


@pytest.mark.usefixtures("declared_filters")
def test_a_filter_declared_on_the_filterset_alone_filters_the_cli_list(make_event: MakeEvent) -> None:
    critical = make_event(severity="critical", recipient="oncall@example.com")
    make_event(severity="warning", recipient="oncall@example.com")
    make_event(severity="critical", recipient="ops@example.com")

    listed = cli("list", "--severity", "CRITICAL", "--recipient", "oncall@example.com", "--json").json()

    assert [event["id"] for event in listed["data"]] == [critical.id]
    assert listed["total"] == 1


@pytest.mark.usefixtures("declared_filters")
def test_a_filter_declared_on_the_filterset_alone_is_an_argument_of_every_mcp_tool_that_selects() -> None:
    arguments = tool_arguments()

    for tool in MCP_TOOLS:
        severity, recipient = arguments[tool]["severity"], arguments[tool]["recipient"]
        assert severity["description"] == "Only events of this severity."
        assert severity["anyOf"] == [{"enum": Severity.values, "type": "string"}, {"type": "null"}]
        assert recipient["anyOf"][0] == {"maxLength": 1024, "type": "string"}


@pytest.mark.usefixtures("declared_filters")
def test_the_sdk_hands_a_tool_the_filters_given_by_their_declared_names() -> None:
    """Through the SDK's own argument validation: what an MCP client's call reaches a tool with."""
    server = MCPServer("probe")
    received: list[tuple[dict[str, str], int]] = []

    @server.tool(name="probe")
    @offering_filters()
    async def probe(filters: dict[str, str], page: int = 1) -> CallToolResult:
        received.append((filters, page))
        return CallToolResult(content=[])

    asyncio.run(server.call_tool("probe", {"recipient": "oncall@example.com", "severity": "critical", "page": 2}))
    asyncio.run(server.call_tool("probe", {"certificate_id": "", "type": None}))

    assert received == [({"recipient": "oncall@example.com", "severity": "critical"}, 2), ({}, 1)]
    with pytest.raises(ToolError, match="severity"):
        asyncio.run(server.call_tool("probe", {"severity": "urgent"}))


# --- one page, one count -------------------------------------------------------------------


@pytest.fixture
def api(settings: Settings) -> APIClient:
    settings.CERTCTL_API_KEYS_NAMED = f"reader:{API_KEY}"
    return APIClient(headers={"Authorization": f"Bearer {API_KEY}"})


NONCE = "0123456789abcdef"
FENCE = re.compile(f"<untrusted-data-{NONCE}>(.*)</untrusted-data-{NONCE}>", re.DOTALL)


def unfenced(value: Any) -> Any:
    """An MCP answer with its fences and its events' retry display taken off: the shape the API and the CLI print."""
    if isinstance(value, dict):
        return {key: unfenced(item) for key, item in value.items() if key != "retry_display"}
    if isinstance(value, list):
        return [unfenced(item) for item in value]
    match = FENCE.fullmatch(value) if isinstance(value, str) else None
    return match.group(1) if match else value


def mcp_list(filters: dict[str, str], page: int, per_page: int) -> Any:
    return unfenced(answers.list_page(page, per_page, filters, NONCE))


@pytest.mark.postgres
def test_the_cli_and_mcp_take_the_total_from_the_stored_counts_as_the_api_does(
    api: APIClient, make_event: MakeEvent
) -> None:
    events = [make_event(channel="Slack") for _ in range(3)]
    # A stored count that disagrees with the events: a list that counted the events itself would say 3.
    NotificationCount.objects.create(channel="Slack", status="pending", unread=True, events=4)

    body = api.get("/api/v1/notifications", {"channel": "Slack", "per_page": "2"}).json()

    assert body["total"] == 7
    assert [event["id"] for event in body["data"]] == [events[2].id, events[1].id]
    assert cli("list", "--channel", "Slack", "--per-page", "2", "--json").json() == body
    assert mcp_list({"channel": "Slack"}, 1, 2) == body


def selects_rows_after_an_offset(sql: str) -> bool:
    """Whether a statement reads whole rows past an offset (rather than the keys, in the index)."""
    return "OFFSET" in sql and not re.match(r'SELECT "notification_events"\."id"( AS "pk")? FROM', sql)


def test_a_deep_page_of_the_cli_and_mcp_reads_its_rows_by_key_as_the_api_does(
    api: APIClient, make_event: MakeEvent
) -> None:
    for _ in range(5):
        make_event()

    with CaptureQueriesContext(connection) as queries:
        body = api.get("/api/v1/notifications", {"page": "2", "per_page": "2"}).json()
        cli_page = cli("list", "--page", "2", "--per-page", "2", "--json").json()
        mcp_page = mcp_list({}, 2, 2)

    assert cli_page == mcp_page == body
    assert len(body["data"]) == 2
    offsets = [query["sql"] for query in queries.captured_queries if "OFFSET" in query["sql"]]
    assert len(offsets) == 3
    assert not [sql for sql in offsets if selects_rows_after_an_offset(sql)]


def test_mcp_answers_an_event_with_its_history_in_the_shape_the_cli_prints(
    webhook: Receiver, make_event: MakeEvent
) -> None:
    event = make_event(channel="Webhook")
    assert deliver_now(event.id) == "sent"
    cli("read", event.id)

    shown = cli("show", event.id, "--json").json()
    answer = answers.event_with_its_history(event.id, NONCE)

    assert unfenced(answer) == shown
    assert [(a["outcome"], a["notification_id"]) for a in shown["attempts"]] == [("success", event.id)]
    assert [a["action"] for a in shown["operator_actions"]] == ["mark_read"]
    # Text from outside is fenced; an attempt without an error has none.
    assert answer["attempts"][0]["notification_id"] == f"<untrusted-data-{NONCE}>{event.id}</untrusted-data-{NONCE}>"
    assert answer["attempts"][0]["error"] == ""


def test_every_filter_of_the_filterset_is_offered_by_the_ui_list_but_the_states_its_tabs_set() -> None:
    from notifications.web.forms import NOT_OFFERED, NotificationFilterForm

    offered = set(NotificationFilterForm().FILTER_FIELDS)

    assert set(NotificationFilterSet.base_filters) - set(NOT_OFFERED) <= offered
    # The page's own status is the delivery state; "Show dismissed" stands for read.
    assert {"status", "dismissed"} <= offered
    assert not {"delivery_status", "read"} & offered


@pytest.mark.usefixtures("declared_filters")
def test_a_filter_declared_on_the_filterset_alone_is_a_field_of_the_ui_list_that_filters_it(
    admin_client: Any, make_event: MakeEvent
) -> None:
    from notifications.web.forms import NotificationFilterForm

    form = NotificationFilterForm()
    assert [value for value, _ in form.fields["severity"].choices] == ["", *Severity.values]
    assert (form.fields["recipient"].max_length, form.fields["recipient"].help_text) == (
        1024, "Only events to exactly this recipient."
    )
    critical = make_event(severity="critical", recipient="oncall@example.com")
    other = make_event(severity="warning", recipient="oncall@example.com")

    page = admin_client.get("/notifications/", {"severity": "critical", "recipient": "oncall@example.com"})

    body = page.content.decode()
    assert page.status_code == 200
    assert critical.id in body
    assert other.id not in body
    assert 'name="severity"' in body
    assert 'name="recipient"' in body
