"""What `qcluster` loads before it forks its worker processes (docs/deployment.md, "Memory").

A module a worker imports on its first delivery is private to that worker; loaded in the parent before the heap
is frozen, it is shared by all of them. Run in a fresh interpreter: this test process has imported everything.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]

FIRST_DELIVERY = """
import asyncio, gc, json, sys
import django
django.setup()
from notifications.management.commands.qcluster import share_with_forked_workers
share_with_forked_workers()
loaded = set(sys.modules)
frozen = gc.get_freeze_count()

from notifications.engine.sender import send_event
from notifications.models import NotificationEvent
from notifications.notifiers import notifiers
from notifications.notifiers.http import new_http_client

async def first_delivery():
    client = new_http_client()
    try:
        event = NotificationEvent(id="notif-1", type="RenewalFailure", channel="Webhook", message="renewal failed")
        return await send_event(event, notifiers()["Webhook"](sys.argv[1]), client)
    finally:
        await client.aclose()

result = asyncio.run(first_delivery())
print(json.dumps({"ok": result.ok, "frozen": frozen, "imported": sorted(set(sys.modules) - loaded)}))
"""


def test_a_workers_first_delivery_imports_nothing_its_parent_did_not_load_and_freeze(receiver, tmp_path):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CERTCTL_")}
    environment.update(
        DJANGO_SETTINGS_MODULE="certctl.settings", SECRET_KEY="test", DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
    )
    run = subprocess.run(
        [sys.executable, "-c", FIRST_DELIVERY, receiver.url + "/hook"],
        cwd=PROJECT, env=environment, capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.splitlines()[-1])

    assert report["ok"] is True
    assert len(receiver.requests) == 1
    assert report["imported"] == []
    assert report["frozen"] > 10_000  # the heap the workers are forked with (about 70,000 objects)
