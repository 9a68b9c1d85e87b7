"""What the chaos run (bench/chaos.py) records, and the promises of docs/reliability.md it checks afterwards."""
import argparse
import json
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from chaos_service import CONNECT_TIMEOUT_S

# A result is recorded within this long of its send ending, unless the database is away.
RECORD_SLACK_S = 2.0
# While the broker is away no hand-off reaches a worker, and django-q2's pusher pauses 10 s after each broker
# error: events created then wait for the outage and up to two such pauses.
BROKER_RECOVERY_S = 20.0

# --- clients -------------------------------------------------------------------------


@dataclass
class ApiResponse:
    started: float
    finished: float
    status: int | None  # None: no answer (connection error or timeout)
    retry_after: str | None
    error: str | None


@dataclass
class Creates:
    acknowledged: dict[str, str] = field(default_factory=dict)  # dedup key: event id
    abandoned: list[str] = field(default_factory=list)
    refused: list[tuple[str, int, str]] = field(default_factory=list)  # key, 4xx status, body
    responses: list[ApiResponse] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


# --- chaos -----------------------------------------------------------------------------


@dataclass
class Disruptions:
    cluster_kills: list[float] = field(default_factory=list)
    web_worker_kills: list[float] = field(default_factory=list)
    broker_down: list[tuple[float, float]] = field(default_factory=list)
    database_down: list[tuple[float, float]] = field(default_factory=list)

# --- checks ----------------------------------------------------------------------------


@dataclass
class Report:
    figures: list[tuple[str, str]] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)

    def figure(self, label: str, value: object) -> None:
        self.figures.append((label, str(value)))

    def promise(self, kept: bool, text: str) -> None:
        if not kept:
            self.broken.append(text)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def spread(values: list[float]) -> str:
    """p50 / p99 / max, in seconds."""
    return f"{percentile(values, 0.5):.1f} / {percentile(values, 0.99):.1f} / {max(values, default=0):.1f} s"


def analyse(args: argparse.Namespace, creates: Creates, disruptions: Disruptions, receiver_log: Path, run_id: str,
            drained: bool, drain_s: float) -> Report:
    from notifications.engine.backoff import RetryPolicy, backoff_delay
    from notifications.models import NotificationAttempt, NotificationEvent

    report = Report()
    policy = RetryPolicy(
        base=timedelta(seconds=args.backoff_base), cap=timedelta(hours=1), max_attempts=args.max_attempts
    )
    bound = CONNECT_TIMEOUT_S + args.read_timeout

    # Creates: every acknowledged one exists exactly once.
    of_the_run = NotificationEvent.objects.filter(dedup_key__startswith=f"chaos-{run_id}-")
    events = {event.id: event for event in of_the_run}
    keys = Counter(event.dedup_key for event in events.values())
    report.figure(
        "creates acknowledged / refused (4xx) / abandoned",
        f"{len(creates.acknowledged)} / {len(creates.refused)} / {len(creates.abandoned)}",
    )
    report.figure("events in the database", len(events))
    report.promise(not creates.refused, f"the API refused {len(creates.refused)} creates: {creates.refused[:3]}")
    report.promise(not creates.abandoned, f"{len(creates.abandoned)} creates never acknowledged")
    report.promise(all(count == 1 for count in keys.values()), "a dedup key has more than one event")
    report.promise(
        len(events) == len(creates.acknowledged),
        f"{len(events)} events for {len(creates.acknowledged)} acknowledged creates",
    )
    missing = [key for key, event_id in creates.acknowledged.items() if event_id not in events]
    report.promise(not missing, f"{len(missing)} acknowledged creates have no event: {missing[:3]}")

    # After the drain: sent or dead, no lease.
    statuses = Counter(event.status for event in events.values())
    leased = sum(1 for event in events.values() if event.claimed_until is not None)
    by_status = ", ".join(f"{status} {n}" for status, n in sorted(statuses.items()))
    report.figure(f"after the drain: {by_status}", f"{drain_s:.1f} s drain")
    report.figure("leases left", leased)
    report.promise(drained, f"not drained within {args.drain_timeout}s")
    report.promise(set(statuses) <= {"sent", "dead"}, f"events neither sent nor dead: {dict(statuses)}")
    report.promise(leased == 0, f"{leased} leases left after the drain")

    # Attempts against the receiver's requests.
    requests: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with receiver_log.open() as lines:
        for line in lines:
            request = json.loads(line)
            if request["id"] in events:
                requests[request["id"]].append(request)
    attempts: dict[str, list[NotificationAttempt]] = defaultdict(list)
    for attempt in NotificationAttempt.objects.filter(event_id__in=list(events)).order_by("event_id", "number"):
        attempts[attempt.event_id].append(attempt)
    unmatched_requests: dict[str, list[float]] = defaultdict(list)
    unmatched_attempts = 0
    for event_id in events:
        pending = sorted(requests[event_id], key=lambda request: request["t"])
        for attempt in attempts[event_id]:
            started = attempt.started_at.timestamp()
            # The request reached the receiver while the attempt lasted; on a starved machine that can be
            # seconds after it started, long past the connect timeout.
            ended = started + attempt.duration_ms / 1000
            match = next((r for r in pending if started - 0.5 <= r["t"] <= ended + 1), None)
            if match is None:
                unmatched_attempts += 1
            else:
                pending.remove(match)
        unmatched_requests[event_id] = [request["t"] for request in pending]

    def in_flight_at_kill(arrived: float) -> bool:
        """A kill came while this request's delivery could not yet be recorded."""
        for killed in disruptions.cluster_kills:
            window = bound + RECORD_SLACK_S
            if any(down <= killed and up >= arrived for down, up in disruptions.database_down):
                window += 30  # recording retries a database error for DATABASE_RETRY_FOR
            if arrived - 0.5 <= killed <= arrived + window:
                return True
        return False

    lost = [t for times in unmatched_requests.values() for t in times]
    unexplained = [t for t in lost if not in_flight_at_kill(t)]
    total_requests = sum(len(r) for r in requests.values())
    total_attempts = sum(len(a) for a in attempts.values())
    report.figure("receiver requests / attempt rows", f"{total_requests} / {total_attempts}")
    report.figure(
        "requests without an attempt row (in flight at a kill / unexplained)",
        f"{len(lost) - len(unexplained)} / {len(unexplained)}",
    )
    report.promise(
        not unexplained, f"{len(unexplained)} receiver requests have no attempt row and no kill explains them"
    )
    report.promise(unmatched_attempts == 0, f"{unmatched_attempts} attempt rows have no receiver request")
    fates = Counter(request["fate"] for rs in requests.values() for request in rs)
    report.figure("receiver answers: " + ", ".join(f"{fate} {n}" for fate, n in sorted(fates.items())),
                  f"{100 * (fates['error'] + fates['hang'] + fates['slow']) / max(1, total_requests):.0f} % troubled")
    duplicates = sum(max(0, sum(1 for r in rs if r["fate"] in ("ok", "slow")) - 1) for rs in requests.values())
    report.figure("duplicate successful deliveries at the receiver", duplicates)
    report.promise(
        duplicates <= len(lost),
        f"{duplicates} duplicates at the receiver, more than the {len(lost)} deliveries in flight at kills",
    )

    # The API: no 5xx but 503 + Retry-After while the database was away.
    def database_away(response: ApiResponse) -> bool:
        return any(
            down - 1 <= response.finished and response.started <= up + 2 for down, up in disruptions.database_down
        )

    server_errors = [r for r in creates.responses if r.status is not None and r.status >= 500]
    outside = [r for r in server_errors if not database_away(r)]
    without_retry_after = [r for r in server_errors if r.status != 503 or not r.retry_after]
    answers = Counter(r.status or 0 for r in creates.responses)
    by_answer = ", ".join(f"{status or 'no answer'} {n}" for status, n in sorted(answers.items()))
    report.figure(f"API answers: {by_answer}", "")
    report.figure(
        "API 5xx outside the database outage / not 503 + Retry-After", f"{len(outside)} / {len(without_retry_after)}"
    )
    report.promise(
        not outside,
        f"{len(outside)} API 5xx outside the database outage: {[(r.status, r.started) for r in outside[:3]]}",
    )
    report.promise(not without_retry_after, f"{len(without_retry_after)} API 5xx not 503 with Retry-After")

    # Retries: outside the outages, none starts more than one interval after it was due.
    outages = [*disruptions.broker_down, *disruptions.database_down]
    lateness: list[float] = []
    excused = 0
    forced_wait: dict[str, float] = {}
    for event_id, rows in attempts.items():
        failures = 0
        forced = 0.0
        for previous, following in zip(rows, rows[1:], strict=False):
            if previous.resulting_status is None or previous.outcome == "success":
                continue
            failures += 1
            wait = backoff_delay(failures, policy).total_seconds()
            forced += previous.duration_ms / 1000 + wait
            due = previous.started_at.timestamp() + previous.duration_ms / 1000 + wait
            started = following.started_at.timestamp()
            lost_between = any(previous.started_at.timestamp() < t < started for t in unmatched_requests[event_id])
            if lost_between or any(down - bound <= due <= up for down, up in outages):
                excused += 1
                continue
            lateness.append(started - due)
        last = rows[-1] if rows else None
        if last and last.outcome != "success" and last.resulting_status is not None:
            forced += last.duration_ms / 1000
            if last.resulting_status == "failed":  # never retried: late by now
                wait = backoff_delay(failures + 1, policy).total_seconds()
                due = last.started_at.timestamp() + last.duration_ms / 1000 + wait
                lateness.append(time.time() - due)
        # A delivery lost with a killed worker is sent again once its lease expires: the kill forced that wait.
        for lost_at in unmatched_requests[event_id]:
            later = [a.started_at.timestamp() for a in rows if a.started_at.timestamp() > lost_at]
            forced += (min(later) if later else time.time()) - lost_at
        forced_wait[event_id] = forced
    late = [value for value in lateness if value > args.retry_interval]
    report.figure(
        "retries started after due: p50 / p99 / max (excused by an outage or a kill)", f"{spread(lateness)} ({excused})"
    )
    report.figure(f"retries started more than {args.retry_interval:g}s after due", f"{len(late)} of {len(lateness)}")
    report.promise(
        not late, f"{len(late)} retries started more than one interval ({args.retry_interval:g}s) after due"
    )

    # Create → sent.
    def broker_away(event: NotificationEvent) -> bool:
        """Waiting for delivery while the broker was away: no new pass could start."""
        created, sent_at = event.created_at.timestamp(), event.sent_at.timestamp() if event.sent_at else time.time()
        return any(created <= up + BROKER_RECOVERY_S and sent_at >= down for down, up in disruptions.broker_down)

    to_sent = {
        event.id: (event.sent_at - event.created_at).total_seconds() for event in events.values() if event.sent_at
    }
    latencies = list(to_sent.values())
    beyond_forced = [
        seconds - forced_wait.get(event_id, 0)
        for event_id, seconds in to_sent.items()
        if not broker_away(events[event_id])
    ]
    report.figure("create → sent p50 / p99 / max", spread(latencies))
    report.figure(
        f"the same less the wait the receiver and the kills forced, {len(beyond_forced)} events not waiting "
        f"during the broker outage (+{BROKER_RECOVERY_S:g}s): p50 / p99 / max",
        spread(beyond_forced),
    )
    report.promise(
        percentile(beyond_forced, 0.99) < 30,
        "create → sent p99 exceeds 30 s plus the wait the receiver and the kills forced",
    )
    return report

