"""certctl's notifier configuration, read from its environment file, as stored destinations (`manage.py notifications
import-certctl --env-file`).

certctl configures one notifier per channel with CERTCTL_* variables (CERTCTL_SLACK_WEBHOOK_URL, CERTCTL_SMTP_HOST…):
the same names this service's environment destinations read, which each notifier declares (ConfigField.setting).
Each channel the file configures becomes the stored destination `certctl-<channel>` (certctl-slack, certctl-email…),
its secret fields sealed. Running it again updates a destination whose variables changed (a variable no longer set
clears its field) and leaves an unchanged one alone, so the import can be repeated. Every change is audited by the
destination operations. No report holds a value from the file: only variable and field names.
"""
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from django.db import transaction
from dotenv import dotenv_values

from notifications.actors import Actor
from notifications.models import Channel, Destination
from notifications.notifiers import destination_config, notifiers
from notifications.notifiers.base import ConfigField
from notifications.operations.destinations import create_destination, update_destination

Outcome = Literal["created", "updated", "unchanged", "skipped"]
# certctl reads a boolean variable as true when it is one of these (internal/config getEnvBool), false otherwise.
CERTCTL_TRUE = ("true", "1", "yes")


class EnvFileError(Exception):
    """The environment file cannot be read: a message fit to show."""


@dataclass(frozen=True)
class ImportedDestination:
    """What the import did with one channel of the file: its destination's name, the outcome, the fields it set
    or changed (names only), or the reason it was skipped."""

    name: str
    channel: str
    outcome: Outcome
    fields: list[str] = field(default_factory=list)
    reason: str = ""


@dataclass
class DestinationImportReport:
    destinations: list[ImportedDestination] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for imported in self.destinations if imported.outcome == outcome)


def destination_name(channel: str) -> str:
    return f"certctl-{channel.lower()}"


def read_env_file(path: str) -> dict[str, str]:
    """The variables of a KEY=VALUE file (comments, quotes and `export` as docker compose and shells read them);
    a variable without a value is left out."""
    file = Path(path)
    if not file.is_file():
        raise EnvFileError(f"--env-file {path}: no such file; give the path of certctl's environment file (.env)")
    try:
        values = dotenv_values(file, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvFileError(f"--env-file {path} cannot be read: {type(exc).__name__}") from None
    return {name: value for name, value in values.items() if value is not None}


def _value(declared: ConfigField, text: str) -> object:
    """A variable's text as certctl reads it: a whole number, a boolean (true, 1, yes), or the text."""
    if declared.kind == "int":
        return int(text) if text.strip().lstrip("-").isdigit() else text
    if declared.kind == "bool":
        return text.strip().lower() in CERTCTL_TRUE
    return text


def channel_config(channel: str, variables: Mapping[str, str]) -> tuple[dict[str, Any], str | None]:
    """The fields of `channel` the variables set ({} when none does), and why they cannot be a destination (a
    required variable unset, a value the channel does not take: named by variable, never quoting it), or None."""
    declared = notifiers()[channel].fields
    config = {f.name: _value(f, variables[f.setting].strip()) for f in declared if variables.get(f.setting, "").strip()}
    if not config:
        return {}, None
    missing = [f.setting for f in declared if f.required and f.name not in config]
    if missing:
        return config, f"{' and '.join(missing)} not set (certctl does not use this channel either)"
    problems = notifiers()[channel].config_problems(config)
    if problems:
        setting = {f.name: f.setting for f in declared}
        return config, "; ".join(f"{setting.get(name, name)} {text}" for name, text in problems.items())
    return config, None


def _import_one(channel: str, config: dict[str, Any], actor: Actor, dry_run: bool) -> ImportedDestination:
    name = destination_name(channel)
    existing = Destination.objects.filter(name=name, deleted_at__isnull=True).first()
    if existing is None:
        if not dry_run:
            create_destination(
                name=name, channel=channel, config=config, actor=actor,
                description="imported from certctl's environment file",
            )
        return ImportedDestination(name, channel, "created", sorted(config))
    if existing.channel != channel or existing.from_environment:
        reason = f"a destination {name} of channel {existing.channel} exists; rename or remove it, then run again"
        return ImportedDestination(name, channel, "skipped", reason=reason)
    current = {key: value for key, value in destination_config(existing).items() if value not in ("", None)}
    changed = sorted(key for key in {*current, *config} if current.get(key) != config.get(key))
    if not changed:
        return ImportedDestination(name, channel, "unchanged")
    if not dry_run:
        # Every field of the channel: one no longer in the file is cleared ("").
        wanted = {declared.name: config.get(declared.name, "") for declared in notifiers()[channel].fields}
        update_destination(name, config=wanted, actor=actor)
    return ImportedDestination(name, channel, "updated", changed)


def import_destinations(path: str, *, actor: Actor, dry_run: bool = False) -> DestinationImportReport:
    """One stored destination per channel the environment file at `path` configures, all in one transaction.
    Raises EnvFileError, and what the destination operations raise (SecretsUnavailable without a key to seal)."""
    variables = read_env_file(path)
    report = DestinationImportReport()
    with transaction.atomic():
        for channel in Channel.values:
            config, problem = channel_config(channel, variables)
            if not config:
                continue
            if problem:
                report.destinations.append(
                    ImportedDestination(destination_name(channel), channel, "skipped", reason=problem)
                )
                continue
            report.destinations.append(_import_one(channel, config, actor, dry_run))
    return report
