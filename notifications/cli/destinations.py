"""`notifications destinations list|add|edit|test|pause|resume|remove`: named destinations, managed at runtime.

A destination's fields are given as `--set field=value`; a secret one is better given as `--set-from-env
field=ENVVAR` or `--prompt field` (read without echo), so that it never lands in the shell's history. No output ever
holds a secret value: only the names of the secret fields that are set (`secrets_set`).
"""
import getpass
import os
import sys
from collections.abc import Sequence
from typing import Any

from django.core.management.base import CommandError
from tabulate import tabulate

from notifications.cli.common import (
    CHANNEL_CHOICE,
    NOT_FOUND_OR_REFUSED,
    USAGE,
    Subcommands,
    UsageParser,
    as_json,
    operator,
    shorten,
    when,
)
from notifications.errors import DestinationConflict, DestinationNotFound, InvalidInput
from notifications.notifiers import notifiers
from notifications.notifiers.base import ConfigField
from notifications.operations.destinations import create_destination, delete_destination, send_test, update_destination
from notifications.operations.pausing import pause_destination, resume_destination
from notifications.queries.destination_health import destination_states
from notifications.queries.destinations import DestinationRow, destination_list, get_destination
from notifications.serializers import DestinationListSerializer, TestOutcomeSerializer

LIST_DESTINATIONS = "list them with `manage.py notifications destinations list`"
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def usage(message: str) -> CommandError:
    return CommandError(message, returncode=USAGE)


def refused(message: str) -> CommandError:
    return CommandError(message, returncode=NOT_FOUND_OR_REFUSED)


def _pairs(given: Sequence[str], option: str, example: str) -> list[tuple[str, str]]:
    """`field=value` arguments split at the first =; a usage error naming the option otherwise."""
    pairs = []
    for text in given:
        name, equals, value = text.partition("=")
        if not equals or not name.strip():
            raise usage(f"{option} {text.split('=')[0][:40]!r}: expected FIELD=VALUE, e.g. {option} {example}")
        pairs.append((name.strip(), value))
    return pairs


def _typed(field: ConfigField | None, name: str, text: str) -> object:
    """A field's value from its text: a whole number or true/false for the fields of those kinds, else the text.
    An empty text stays empty (it clears the field)."""
    if field is None or text == "":
        return text
    if field.kind == "int":
        try:
            return int(text)
        except ValueError:
            raise usage(f"--set {name}: {text[:40]!r} is not a whole number") from None
    if field.kind == "bool":
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise usage(f"--set {name}: expected true or false, not {text[:40]!r}")
    return text


class DestinationCommands(Subcommands):
    """destinations list|add|edit|test|pause|resume|remove"""

    @staticmethod
    def add_parsers(commands: Any) -> None:
        group = commands.add_parser(
            "destinations", help="named destinations: list, add, edit, test, pause, resume, remove",
            description="Where notifications go: the environment destinations (one per channel, named after it, "
            "read-only here) and stored ones managed at runtime. Secret fields are never printed.",
        )
        actions = group.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=UsageParser)

        listing = actions.add_parser("list", help="every destination with its state; secrets only by name")
        listing.add_argument("--json", action="store_true", help="print the REST API's /api/v1/destinations JSON")

        add = actions.add_parser(
            "add", help="create a destination",
            description="Create a destination. docs/channels.md lists each channel's fields; secret ones are "
            "better given with --set-from-env or --prompt than with --set, which leaves them in the shell history.",
        )
        add.add_argument("name", help="lower-case letters, digits and dashes, e.g. payments-slack")
        add.add_argument("--channel", required=True, **CHANNEL_CHOICE)
        DestinationCommands._field_options(add)
        add.add_argument("--description", default="")
        add.add_argument("--disabled", action="store_true", help="create it disabled: it takes no events until enabled")

        edit = actions.add_parser(
            "edit", help="change a stored destination's fields, description or enabled flag",
            description="Change a stored destination: the fields given change, the others (secret ones too) keep "
            "their values; --set FIELD= clears a field. Environment destinations are changed by their variables.",
        )
        edit.add_argument("name")
        DestinationCommands._field_options(edit)
        edit.add_argument("--description")
        switch = edit.add_mutually_exclusive_group()
        switch.add_argument("--enable", dest="enabled", action="store_const", const=True, default=None)
        switch.add_argument(
            "--disable", dest="enabled", action="store_const", const=False,
            help="take no new events; the waiting ones wait until it is enabled",
        )

        for verb, text in (
            ("test", "deliver one test message now through a destination (not stored as a notification)"),
            ("pause", "hold a destination's events until resumed (a maintenance window)"),
            ("resume", "let a paused destination's events flow again"),
            ("remove", "remove a stored destination (refused while it has unsent notifications)"),
        ):
            actions.add_parser(verb, help=text).add_argument("name")

    @staticmethod
    def _field_options(parser: Any) -> None:
        parser.add_argument(
            "--set", dest="set_values", action="append", default=[], metavar="FIELD=VALUE",
            help="a field of the channel, e.g. --set url=https://hooks.example.com/x (repeatable; FIELD= clears it)",
        )
        parser.add_argument(
            "--set-from-env", dest="env_values", action="append", default=[], metavar="FIELD=ENVVAR",
            help="a field's value from an environment variable, e.g. --set-from-env secret=HOOK_SECRET (repeatable)",
        )
        parser.add_argument(
            "--prompt", dest="prompted", action="append", default=[], metavar="FIELD",
            help="ask for a field's value without echoing it (repeatable)",
        )

    def handle_destinations(self, *, action: str, **options: Any) -> None:
        try:
            getattr(self, f"destinations_{action}")(**options)
        except DestinationNotFound as exc:
            raise refused(f"no destination {exc.name!r}; {LIST_DESTINATIONS}") from None
        except DestinationConflict as exc:
            raise refused(exc.message) from None

    # --- list -------------------------------------------------------------------

    def destinations_list(self, *, json: bool, **_: Any) -> None:
        rows = destination_list()
        if json:
            self.out(as_json(DestinationListSerializer({"data": rows, "total": len(rows)}).data))
            return
        states = {state["name"]: state for state in destination_states()}
        table = []
        for d in rows:
            state = states.get(d["name"])  # None: created since the states were read
            table.append((
                d["name"], d["channel"], "environment" if d["from_environment"] else "stored",
                "yes" if d["enabled"] else "no", "yes" if d["configured"] else f"no: {shorten(d['problem'], 50)}",
                state["state"] if state else "", (state and state["paused_by"]) or "",
                when(state and state["last_success_at"]), when(state and state["last_failure_at"]),
                shorten(", ".join(f"{k}={v}" for k, v in d["config"].items() if v not in ("", None)), 50),
                ", ".join(d["secrets_set"]), shorten(d["description"], 30),
            ))
        headers = (
            "Name", "Channel", "Defined by", "Enabled", "Configured", "State", "Paused by", "Last success",
            "Last failure", "Fields", "Secrets set", "Description",
        )
        self.out(tabulate(table, headers=headers))

    # --- add and edit -----------------------------------------------------------

    def _config(
        self, channel: str, set_values: Sequence[str], env_values: Sequence[str], prompted: Sequence[str]
    ) -> dict[str, object]:
        """The fields given on the command line, typed by the channel's declarations; the notifier judges them."""
        fields = {field.name: field for field in notifiers()[channel].fields}
        config: dict[str, object] = {}
        for name, text in _pairs(set_values, "--set", "url=https://hooks.example.com/alerts"):
            field = fields.get(name)
            if field is not None and field.secret and text:
                self.stderr.write(
                    f"note: --set {name}=… leaves a secret in your shell history; "
                    f"--set-from-env {name}=ENVVAR or --prompt {name} do not"
                )
            config[name] = _typed(field, name, text)
        for name, variable in _pairs(env_values, "--set-from-env", "secret=HOOK_SECRET"):
            if variable not in os.environ:
                raise usage(f"--set-from-env {name}={variable}: the environment variable {variable} is not set")
            config[name] = _typed(fields.get(name), name, os.environ[variable])
        for name in prompted:
            if not sys.stdin.isatty():
                raise usage(
                    f"--prompt {name}: no terminal to ask on; give the value with --set-from-env {name}=ENVVAR"
                )
            config[name] = _typed(fields.get(name), name, getpass.getpass(f"{name} (not echoed): "))
        return config

    def destinations_add(
        self, *, name: str, channel: str, set_values: list[str], env_values: list[str], prompted: list[str],
        description: str, disabled: bool, **_: Any,
    ) -> None:
        config = self._config(channel, set_values, env_values, prompted)
        try:
            create_destination(
                name=name, channel=channel, config=config, enabled=not disabled, description=description,
                actor=operator(),
            )
        except InvalidInput as exc:
            raise usage(f"invalid destination: {self._problems(exc)}; nothing was created") from None
        self.out(self.style.SUCCESS(f"created destination {name} ({channel})"))
        self._show(get_destination(name))
        self.out(f"Try it: `manage.py notifications destinations test {name}`.")

    def destinations_edit(
        self, *, name: str, set_values: list[str], env_values: list[str], prompted: list[str],
        description: str | None, enabled: bool | None, **_: Any,
    ) -> None:
        before = get_destination(name)
        config = self._config(before["channel"], set_values, env_values, prompted)
        try:
            update_destination(
                name, config=config or None, enabled=enabled, description=description, actor=operator()
            )
        except InvalidInput as exc:
            raise usage(f"invalid change: {self._problems(exc)}; nothing was changed") from None
        after = get_destination(name)
        if after["updated_at"] == before["updated_at"]:
            self.out(f"destination {name}: nothing to change")
            return
        self.out(self.style.SUCCESS(f"changed destination {name}"))
        self._show(after)

    @staticmethod
    def _problems(exc: InvalidInput) -> str:
        def option(field: str) -> str:
            if field.startswith("config."):
                return f"field {field.removeprefix('config.')}"
            return {"name": "NAME", "channel": "--channel"}.get(field, f"--{field}")

        return "; ".join(f"{option(field)}: {text}" for field, text in exc.errors.items())

    def _show(self, row: DestinationRow) -> None:
        fields = [
            ("Channel", row["channel"]),
            ("Enabled", "yes" if row["enabled"] else "no"),
            ("Configured", "yes" if row["configured"] else f"no: {row['problem']}"),
            *((f"  {name}", value) for name, value in row["config"].items() if value not in ("", None)),
            ("Secrets set", ", ".join(row["secrets_set"]) or "none"),
            ("Description", row["description"]),
        ]
        self.out(tabulate(fields, tablefmt="plain"))

    # --- test, pause, resume, remove -------------------------------------------

    def destinations_test(self, *, name: str, **_: Any) -> None:
        outcome = TestOutcomeSerializer(send_test(name, actor=operator())).data
        status = f", HTTP {outcome['http_status']}" if outcome["http_status"] else ""
        line = f"test message through {name}: {outcome['outcome']}{status} ({outcome['duration_ms']} ms)"
        if outcome["outcome"] == "ok":
            self.out(self.style.SUCCESS(line))
            return
        raise refused(f"{line}: {outcome['error']}")

    def destinations_pause(self, *, name: str, **_: Any) -> None:
        if pause_destination(name, operator()):
            self.out(self.style.SUCCESS(
                f"{name} paused: its events wait until `manage.py notifications destinations resume {name}`"
            ))
        else:
            self.out(f"{name} was already paused; nothing changed")

    def destinations_resume(self, *, name: str, **_: Any) -> None:
        if resume_destination(name, operator()):
            self.out(self.style.SUCCESS(f"{name} resumed: its waiting events are delivered now"))
        else:
            self.out(f"{name} was not paused; nothing changed")

    def destinations_remove(self, *, name: str, **_: Any) -> None:
        delete_destination(name, actor=operator())
        self.out(self.style.SUCCESS(f"removed destination {name} (and from every route that named it)"))
