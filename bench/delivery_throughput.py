"""Delivery throughput of one worker pass against a local Webhook receiver with fixed latency.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/certctl_bench \
        .venv/bin/python bench/delivery_throughput.py --events 2000 --latency 0.05

Creates the database tables if needed, queues N Webhook events, runs process_pending until none is
left and prints events/second for the configured concurrency. Not part of the test run.
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certctl.test_settings")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05, help="receiver delay per request, seconds")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 32])
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from notifications import services
    from notifications.models import NotificationEvent
    from tests.receivers import Receiver, Reply

    call_command("migrate", verbosity=0)
    receiver = Receiver().start()
    receiver.reply_with(Reply(status=200, delay=args.latency))
    settings.CERTCTL_WEBHOOK_URL = receiver.url + "/hook"
    print(f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
          f"{args.events} events, receiver latency {args.latency * 1000:.0f} ms")
    for concurrency in args.concurrency:
        settings.CERTCTL_NOTIFICATION_CONCURRENCY = concurrency
        NotificationEvent.objects.all().delete()
        NotificationEvent.objects.bulk_create(
            NotificationEvent(type="ExpirationWarning", channel="Webhook", recipient="bench", message=f"event {i}")
            for i in range(args.events)
        )
        receiver.requests.clear()
        started = time.perf_counter()
        while services.process_pending().claimed:
            pass
        elapsed = time.perf_counter() - started
        sent = NotificationEvent.objects.filter(status="sent").count()
        print(f"concurrency {concurrency:>3}: {sent} sent in {elapsed:6.2f}s = {sent / elapsed:8.1f} events/s; "
              f"receiver saw {len(receiver.requests)} requests")
    NotificationEvent.objects.all().delete()
    receiver.stop()


if __name__ == "__main__":
    main()
