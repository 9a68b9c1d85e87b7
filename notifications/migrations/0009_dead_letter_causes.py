import django.db.models.functions.comparison
from django.db import migrations, models
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import Substr

# Dead events are read and written this many at a time, newest first along notif_status_created_idx.
CHUNK = 2000


def fill_causes(apps, schema_editor):
    """Store the cause of every dead event, as the engine stores it from now on: its last error normalised, and
    permanent when its final failure was (an event imported from certctl had no attempt here: permanent when it
    was read in certctl before delivery, else transient, certctl having given up after its retries)."""
    from notifications.causes import SCAN_LENGTH, dead_cause
    from notifications.operations.certctl_import import READ_BEFORE_DELIVERY

    Event = apps.get_model("notifications", "NotificationEvent")
    Attempt = apps.get_model("notifications", "NotificationAttempt")
    final_outcome = (
        Attempt.objects.filter(event_id=OuterRef("id"), resulting_status="dead").order_by("-number").values("outcome")[:1]
    )
    dead = Event.objects.filter(status="dead").order_by("-created_at", "-id").annotate(
        # One character more than a cause reads, so that a cut error is known to be cut.
        error_start=Substr("last_error", 1, SCAN_LENGTH + 1), final_outcome=Subquery(final_outcome),
    )
    after = None
    while True:
        chunk = dead if after is None else dead.filter(Q(created_at__lt=after[0]) | Q(created_at=after[0], id__lt=after[1]))
        rows = list(chunk.values_list("id", "created_at", "error_start", "final_outcome")[:CHUNK])
        if not rows:
            return
        changed = []
        for event_id, _, error_start, final in rows:
            permanent = final == "permanent_failure" if final else (error_start or "").startswith(READ_BEFORE_DELIVERY)
            cause, kind = dead_cause(error_start, permanent=permanent)
            changed.append(Event(id=event_id, cause=cause, cause_kind=kind))
        Event.objects.bulk_update(changed, ["cause", "cause_kind"])
        after = rows[-1][1], rows[-1][0]


class Migration(migrations.Migration):
    dependencies = [("notifications", "0008_drop_event_id_like_indexes")]

    operations = [
        migrations.AddField(
            model_name="notificationevent",
            name="cause",
            field=models.CharField(blank=True, max_length=240, null=True),
        ),
        migrations.AddField(
            model_name="notificationevent",
            name="cause_kind",
            field=models.CharField(blank=True, choices=[("permanent", "Permanent"), ("transient", "Transient")], max_length=9, null=True),
        ),
        migrations.RunPython(fill_causes, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="notificationevent",
            constraint=models.CheckConstraint(condition=models.Q(("cause_kind__isnull", True), ("cause_kind__in", ["permanent", "transient"]), _connector="OR"), name="notification_events_cause_kind_valid"),
        ),
        migrations.AddConstraint(
            model_name="notificationevent",
            constraint=models.CheckConstraint(condition=models.Q(models.Q(("cause__isnull", False), ("cause_kind__isnull", False), ("status", "dead")), models.Q(models.Q(("status", "dead"), _negated=True), ("cause__isnull", True), ("cause_kind__isnull", True)), _connector="OR"), name="notification_events_cause_when_dead"),
        ),
        migrations.AddIndex(
            model_name="notificationevent",
            index=models.Index(models.F("channel"), models.F("cause_kind"), models.F("cause"), models.OrderBy(django.db.models.functions.comparison.Coalesce("last_attempt_at", "created_at"), descending=True), models.OrderBy(models.F("created_at"), descending=True), models.OrderBy(models.F("id"), descending=True), condition=models.Q(("read_at__isnull", True), ("status", "dead")), name="notif_dead_cause_idx"),
        ),
    ]
