"""Prometheus series fed by the delivery code in this process."""
from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "certctl_notification_deliveries",
    "Delivery attempts by channel and outcome (success, transient_failure, permanent_failure, dead_lettered).",
    ["channel", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "certctl_notification_delivery_duration_seconds",
    "Time spent in one delivery attempt.",
    ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30),
)
PASS_SECONDS = Gauge("certctl_notification_last_pass_duration_seconds", "Duration of the last pass.", ["pass"])
PASS_ROWS = Gauge("certctl_notification_last_pass_rows", "Events claimed by the last pass.", ["pass"])


def observe_delivery(channel, outcome, new_status, duration_ms):
    DELIVERIES.labels(channel=channel, outcome=outcome).inc()
    if new_status == "dead":
        DELIVERIES.labels(channel=channel, outcome="dead_lettered").inc()
    DELIVERY_SECONDS.labels(channel=channel).observe(duration_ms / 1000)


def observe_pass(report):
    PASS_SECONDS.labels(**{"pass": report.kind}).set(report.duration_s)
    PASS_ROWS.labels(**{"pass": report.kind}).set(report.claimed)
