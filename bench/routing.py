"""What routing costs (issue 23): `POST /api/v1/alerts` with 200 routes and 50 destinations beside
`POST /api/v1/notifications` in the same run, through gunicorn.

    DATABASE_URL=postgres://certctl@127.0.0.1:5432/certctl_bench .venv/bin/python bench/routing.py

It migrates the database, replaces its routes, stored destinations and events with 50 Webhook destinations and 200
routes (each on a `team` label, an `env` glob, types and two certificate globs, with one destination when its number is
even, two when odd), then starts gunicorn
with the shipped gunicorn.conf.py and sends --requests of each kind, alternating, one at a time from this process:

- notification: `POST /api/v1/notifications` to the Webhook channel: one event, no routing.
- alert: `POST /api/v1/alerts` whose labels match only the next-to-last route (which has one destination), so that
  199 routes are tried: one event.

Both create one event per request (no dedup key); no worker runs, so nothing is delivered. The first --warm-up
requests of each kind are left out (connections, the routing cache). Latency is from sending the request to the
whole answer; p50 and p95 are printed side by side with their difference. The database must be PostgreSQL; its
routes, destinations and events are replaced. Not part of the test run. Figures and the command:
docs/performance.md.
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certctl.settings")
os.environ.setdefault("SECRET_KEY", "bench-secret-" + uuid.uuid4().hex)
KEY = "bench-routing-" + uuid.uuid4().hex

ROUTES = 200
DESTINATIONS = 50
TYPES = ["ExpirationWarning", "RenewalFailure", "Revocation", "DeploymentFailure"]


def prepare() -> None:
    """The database migrated, with 50 destinations and 200 routes only."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from notifications.actors import Actor
    from notifications.models import Destination, NotificationEvent, Route
    from notifications.operations.routes import create_route

    NotificationEvent.objects.all().delete()
    Route.objects.all().delete()
    Destination.objects.filter(from_environment=False).delete()
    Destination.objects.ensure_environment()
    Destination.objects.bulk_create(
        Destination(name=f"team-{n:02d}-hook", channel="Webhook") for n in range(DESTINATIONS)
    )
    actor = Actor("bench", "cli")
    for n in range(ROUTES):
        create_route(
            name=f"team-{n:03d}",
            match={
                "types": TYPES[: 1 + n % len(TYPES)], "labels": {"team": f"team-{n:03d}", "env": "prod*"},
                "certificate_ids": [f"mc-{n:03d}-*", "mc-shared-*"],
            },
            destinations=sorted({f"team-{n % DESTINATIONS:02d}-hook", f"team-{(n * 7) % DESTINATIONS:02d}-hook"})[
                : 1 + n % 2
            ],
            actor=actor,
        )


def start_gunicorn(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """gunicorn with the shipped configuration, an admin key for this run and no rate limit."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CERTCTL_", "GUNICORN_"))}
    env.update(
        PORT=str(port), CERTCTL_API_KEYS_NAMED=f"bench:{KEY}:admin", CERTCTL_RATE_LIMIT_RPS="0",
        CERTCTL_LOG_LEVEL="WARNING",
    )
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "certctl.wsgi"], cwd=PROJECT, env=env,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server, f"http://127.0.0.1:{port}"
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"gunicorn did not start; see {log}")
            time.sleep(0.1)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(base: str, requests: int, warm_up: int) -> dict[str, list[float]]:
    import httpx

    last = ROUTES - 2  # even: one destination
    bodies = {
        "notification": ("/api/v1/notifications", {
            "type": "ExpirationWarning", "channel": "Webhook", "recipient": "ops@example.com",
            "message": "api.example.com expires in 7 days", "certificate_id": f"mc-{last:03d}-api",
            "severity": "warning",
        }),
        "alert": ("/api/v1/alerts", {
            "type": "ExpirationWarning", "message": "api.example.com expires in 7 days",
            "certificate_id": f"mc-{last:03d}-api", "severity": "warning",
            "labels": {"team": f"team-{last:03d}", "env": "prod-eu"},
        }),
    }
    timings: dict[str, list[float]] = {kind: [] for kind in bodies}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client:
        for number in range(warm_up + requests):
            for kind, (path, body) in bodies.items():
                started = time.perf_counter()
                response = client.post(path, json=body)
                elapsed = time.perf_counter() - started
                if response.status_code != 201:
                    sys.exit(f"{kind}: HTTP {response.status_code} {response.text[:500]}")
                if kind == "alert" and response.json()["routes"] != [f"team-{last:03d}"]:
                    sys.exit(f"alert went elsewhere: {response.text[:500]}")
                if number >= warm_up:
                    timings[kind].append(elapsed * 1000)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="measured requests of each kind")
    parser.add_argument("--warm-up", type=int, default=50, help="requests of each kind left out first")
    arguments = parser.parse_args()
    prepare()
    log = Path("/tmp/certctl-bench-routing-gunicorn.log")
    server, base = start_gunicorn(log)
    try:
        timings = measure(base, arguments.requests, arguments.warm_up)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"{ROUTES} routes, {DESTINATIONS} destinations; {arguments.requests} requests of each kind, alternating")
    print(f"{'':14}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    for kind, values in timings.items():
        p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
        print(f"{kind:14}{p50:10.2f}{p95:10.2f}{statistics.mean(values):10.2f}")
    added = {share: percentile(timings["alert"], share) - percentile(timings["notification"], share)
             for share in (0.5, 0.95)}
    print(f"{'routing adds':14}{added[0.5]:10.2f}{added[0.95]:10.2f}")


if __name__ == "__main__":
    main()
