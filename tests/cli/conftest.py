"""Run `manage.py notifications …` in-process through call_command and keep what it printed and how it ended."""
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from notifications.models import NotificationEvent

# tests/conftest.py's make_event: an event created through operations.events.create_event, with any field given.
MakeEvent = Callable[..., NotificationEvent]


@dataclass
class Run:
    out: str
    err: str
    returncode: int = 0
    message: str = ""

    def json(self) -> Any:
        return json.loads(self.out)


def cli(*args: str) -> Run:
    """The command's output; fails the test if it ends with an error."""
    out, err = io.StringIO(), io.StringIO()
    call_command("notifications", *args, stdout=out, stderr=err)
    return Run(out.getvalue(), err.getvalue())


def cli_error(*args: str) -> Run:
    """A run that must end in an error: its exit code, message and output."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("notifications", *args, stdout=out, stderr=err)
    return Run(out.getvalue(), err.getvalue(), raised.value.returncode, str(raised.value))
