"""Delivery across many destinations against one, side by side: the same number of pending events, spread over 50
stored Webhook destinations (each with its own path and signing secret) or all for one.

    DATABASE_URL=postgres://certctl@127.0.0.1:5432/certctl_bench REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python bench/destinations.py

Each run is `notifications sweep` (passes.process_pending) over the pending events at the default concurrency,
against bench/delivery_speed.py's receiver (a process of its own, answering 200 after --latency seconds). Every
destination points at that one receiver, so the per-server cap (CERTCTL_NOTIFICATION_DESTINATION_CONCURRENCY) is
the same in both runs: what differs is the per-destination work of a pass (one notifier each, their breaker rows,
the held set), which must not serialise it (issue 23: within 10 % of one destination's throughput). The runs
alternate, --rounds times, and the median and the best of each are printed (on a busy machine single sweeps vary
by a third). The database must be PostgreSQL; its tables are
migrated and emptied. Figures and the command: docs/performance.md.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from delivery_speed import clear_tables, start_receiver

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certctl.test_settings")


def set_up_destinations(url: str, count: int) -> list[str]:
    """`count` stored Webhook destinations on the receiver, each with a path and a signing secret of its own."""
    from notifications import sealing
    from notifications.models import Destination, DestinationState

    DestinationState.objects.all().delete()
    Destination.objects.filter(from_environment=False).delete()
    names = [f"team-{n:02d}" for n in range(count)]
    Destination.objects.bulk_create(
        Destination(
            name=name, channel="Webhook",
            sealed_secrets=sealing.seal({"url": f"{url}/hook/{name}", "secret": f"bench-secret-{name}"}),
        )
        for name in names
    )
    return names


def make_pending(names: list[str], events: int) -> None:
    from notifications.models import NotificationEvent

    NotificationEvent.objects.bulk_create(
        (
            NotificationEvent(
                type="ExpirationWarning", channel="Webhook", target_id=names[n % len(names)],
                recipient="ops@example.com", message=f"event {n}",
            )
            for n in range(events)
        ),
        batch_size=5000,
    )


def sweep(url: str, destinations: int, events: int) -> float:
    """Events per second of one sweep over `events` pending events spread over `destinations` destinations."""
    from notifications.engine import passes
    from notifications.models import NotificationEvent

    clear_tables()
    make_pending(set_up_destinations(url, destinations), events)
    started = time.perf_counter()
    passes.process_pending()
    elapsed = time.perf_counter() - started
    sent = NotificationEvent.objects.filter(status="sent").count()
    assert sent == events, f"sweep sent {sent} of {events}"
    return events / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000, help="pending events of each sweep")
    parser.add_argument("--destinations", type=int, default=50, help="destinations of the spread run")
    parser.add_argument("--latency", type=float, default=0.05, help="the receiver's answer time, in seconds")
    parser.add_argument("--rounds", type=int, default=3, help="sweeps of each kind, alternating; the best counts")
    args = parser.parse_args()

    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL database for the benchmark (its tables are emptied)")
    import logging

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    # The sweep's per-attempt lines would go to this terminal.
    logging.getLogger("notifications").setLevel(logging.WARNING)
    receiver, url = start_receiver(args.latency)
    try:
        print(
            f"{args.events} events, receiver latency {args.latency * 1000:.0f} ms, concurrency "
            f"{settings.CERTCTL_NOTIFICATION_CONCURRENCY}, per server "
            f"{settings.CERTCTL_NOTIFICATION_DESTINATION_CONCURRENCY}", flush=True,
        )
        rates: dict[int, list[float]] = {1: [], args.destinations: []}
        for round_number in range(1, args.rounds + 1):
            for count, measured in rates.items():
                measured.append(sweep(url, count, args.events))
                print(f"  round {round_number}: {count:>3} destination(s) {measured[-1]:8.1f}/s", flush=True)
        print(f"{'':<20} {'median':>10} {'best':>10}")
        for count, measured in rates.items():
            label = "1 destination" if count == 1 else f"{count} destinations"
            print(f"{label:<20} {statistics.median(measured):8.1f}/s {max(measured):8.1f}/s")
        one, spread = (statistics.median(rates[count]) for count in rates)
        print(f"{args.destinations} destinations / 1, median: {100 * spread / one:.0f} %")
    finally:
        receiver.terminate()
        receiver.wait()
        clear_tables()


if __name__ == "__main__":
    main()
