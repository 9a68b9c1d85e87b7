"""The chaos run (bench/chaos.py) in a bounded form (~80 s): a minute of creates through the API while qcluster
process groups are SIGKILLed, a gunicorn worker is killed, the Redis broker is stopped and the database cut,
against a receiver that fails about 30 % of requests; every promise of docs/reliability.md must hold."""
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

PROJECT = Path(__file__).resolve().parents[2]
# The run's own bound; the subprocess timeout and the test's stay above it.
BOUNDED_FORM = [
    "--events", "300", "--duration", "60", "--kill-every", "15", "25", "--broker-down", "12", "--database-down", "10",
    "--drain-timeout", "120",
]


def chaos_database_url() -> str:
    """A database of the run's own beside the test database: the run's processes commit, and it empties it."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_chaos_run"))


@pytest.mark.chaos
@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(420)
def test_nothing_is_lost_duplicated_or_late_through_kills_and_outages(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable, "bench/chaos.py", *BOUNDED_FORM,
            "--logs", str(tmp_path), "--json", str(tmp_path / "report.json"),
        ],
        cwd=PROJECT,
        env={**os.environ, "DATABASE_URL": chaos_database_url()},
        capture_output=True,
        text=True,
        timeout=400,
    )
    table = result.stdout + result.stderr[-3000:]
    assert (tmp_path / "report.json").exists(), table
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["broken"] == [], table
    assert result.returncode == 0, table
    figures = dict(report["figures"])
    assert figures["events in the database"] == "300", table
    assert figures["leases left"] == "0", table
    # The run did disrupt: kills happened and the outages lasted.
    kills, worker_kills, broker, database = figures[
        "qcluster kills / web worker kills / broker down / database cut"
    ].split(" / ")
    assert int(kills) >= 2, table
    assert worker_kills == "1", table
    assert broker, table
    assert database, table
