"""`notifications channels`, `pause` and `resume`: the channels' circuit breakers and maintenance pauses."""
from typing import Any

from tabulate import tabulate

from notifications.cli.common import CHANNEL_CHOICE, Subcommands, as_json, operator, when
from notifications.operations.channels import pause_channel, resume_channel
from notifications.queries.channels import channel_states
from notifications.serializers import ChannelListSerializer


class ChannelCommands(Subcommands):
    """channels, pause, resume"""

    @staticmethod
    def add_parsers(commands: Any) -> None:
        channels = commands.add_parser(
            "channels", help="each channel's state: closed, open (circuit breaker) or paused"
        )
        channels.add_argument("--json", action="store_true", help="print the REST API's /api/v1/channels JSON")
        for verb, text in (("pause", "hold a channel's events until resumed (a maintenance window)"),
                           ("resume", "let a paused channel's events flow again")):
            change = commands.add_parser(verb, help=text)
            change.add_argument("channel", **CHANNEL_CHOICE)

    def handle_channels(self, *, json: bool, **_: Any) -> None:
        channels = channel_states()
        if json:
            self.out(as_json(ChannelListSerializer({"data": channels, "total": len(channels)}).data))
            return
        rows = [
            (
                c["name"], "yes" if c["configured"] else "no", c["state"], when(c["since"]), c["paused_by"] or "",
                c["consecutive_failures"], when(c["next_probe_at"]),
            )
            for c in channels
        ]
        headers = ("Channel", "Configured", "State", "Since", "Paused by", "Failures in a row", "Next probe")
        self.out(tabulate(rows, headers=headers))

    def handle_pause(self, *, channel: str, **_: Any) -> None:
        if pause_channel(channel, operator()):
            self.out(self.style.SUCCESS(
                f"{channel} paused: its events wait until `manage.py notifications resume {channel}`"
            ))
        else:
            self.out(f"{channel} was already paused; nothing changed")

    def handle_resume(self, *, channel: str, **_: Any) -> None:
        if resume_channel(channel, operator()):
            self.out(self.style.SUCCESS(f"{channel} resumed: its waiting events are delivered now"))
        else:
            self.out(f"{channel} was not paused; nothing changed")
