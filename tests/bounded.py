"""A bound of a test's own for code that guards a timeout: a lost timeout fails the test in seconds, not at
pytest-timeout's."""
import threading
from collections.abc import Callable
from typing import TypeVar

import pytest
from django.db import connections

Result = TypeVar("Result")


def finishes_within(seconds: float, call: Callable[[], Result]) -> Result:
    """Run `call` in a daemon thread and return what it returns (or raise what it raised).

    Fails the test if `call` is still running after `seconds`; the stuck thread is left behind as a daemon.
    A call that uses the database needs `transactional_db`: the thread has its own connection.
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except BaseException as exc:  # handed to the test's thread below
            outcome["error"] = exc
        finally:
            connections.close_all()

    worker = threading.Thread(target=run, name=f"bounded {getattr(call, '__name__', call)}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        pytest.fail(f"still running after {seconds:g}s: a timeout that should have ended it is missing or too long")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["result"]  # type: ignore[return-value]
