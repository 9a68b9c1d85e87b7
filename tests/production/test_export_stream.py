"""A CSV export that lasts longer than gunicorn's worker timeout arrives whole through the shipped gunicorn.conf.py
(issue 21, N3). With the sync worker the arbiter killed the worker mid-stream, after `200 OK`: the download ended on
a row boundary and looked complete (docs/decisions/0004-threaded-web-workers.md).

A real gunicorn on the test database, with GUNICORN_TIMEOUT=2; the client reads the first piece, then pauses for
longer than the timeout, as a slow client does, while the rest waits in the server's socket.
"""
import csv
import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.db import connection

from tests.production.test_workers import database_url

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PROJECT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 2
KEY = "export-stream-key-0123456789"
ROWS = 20_000
# Rows of about 1.3 KB: some 26 MB, far more than the sockets between server and client buffer.
MESSAGE_CHARACTERS = 1200

INSERT_EVENTS = """
INSERT INTO notification_events (id, type, channel, recipient, message, status, retry_count, attempt_count,
                                 created_at, updated_at)
SELECT 'export-' || lpad(n::text, 6, '0'), 'ExpirationWarning', 'Webhook', 'ops@example.com', repeat('x', %s),
       'pending', 0, 0, timestamptz '2026-11-29' + n * interval '1 s', timestamptz '2026-11-29' + n * interval '1 s'
FROM generate_series(1, %s) AS n
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_listening(port, server, log):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, f"gunicorn exited:\n{log.read_text()}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"gunicorn did not start:\n{log.read_text()}")


@pytest.fixture
def gunicorn(tmp_path):
    port = free_port()
    log = tmp_path / "gunicorn.log"
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("CERTCTL_", "DJANGO_", "GUNICORN_"))
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="certctl.settings", SECRET_KEY="export-stream-test-secret", DATABASE_URL=database_url(),
        PORT=str(port), WEB_CONCURRENCY="1", GUNICORN_TIMEOUT=str(TIMEOUT_S), CERTCTL_API_KEYS_NAMED=f"export:{KEY}",
    )
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "certctl.wsgi"], cwd=PROJECT, env=environment,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_until_listening(port, server, log)
        yield f"http://127.0.0.1:{port}", log
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def test_an_export_outlasting_the_worker_timeout_arrives_whole_with_its_count_up_front(gunicorn):
    base, log = gunicorn
    with connection.cursor() as cursor:
        cursor.execute(INSERT_EVENTS, [MESSAGE_CHARACTERS, ROWS])
    received = io.BytesIO()

    started = time.monotonic()
    with httpx.stream(
        "GET", f"{base}/api/v1/notifications", params={"format": "csv"}, headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    ) as response:
        assert response.status_code == 200
        announced = int(response.headers["X-Total-Count"])
        pieces = response.iter_bytes()
        received.write(next(pieces))
        time.sleep(TIMEOUT_S + 2)  # the arbiter checks once a second: a sync worker would be gone by now
        for piece in pieces:
            received.write(piece)
    lasted = time.monotonic() - started

    rows = list(csv.reader(io.StringIO(received.getvalue().decode())))
    assert announced == ROWS
    assert len(rows) == 1 + ROWS
    assert rows[-1][0] == "export-000001"  # oldest last
    assert lasted > TIMEOUT_S
    assert "WORKER TIMEOUT" not in log.read_text()
