"""last_attempt_at: when an event's latest attempt happened, for the failed_after/failed_before filters."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0005_channel_state'),
    ]

    operations = [
        migrations.AddField(
            model_name='notificationevent',
            name='last_attempt_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        # Events attempted before this column existed: the start of their latest attempt is the closest record.
        migrations.RunSQL(
            "UPDATE notification_events SET last_attempt_at = (SELECT MAX(a.started_at) FROM notification_attempts a "
            "WHERE a.event_id = notification_events.id) WHERE attempt_count > 0",
            migrations.RunSQL.noop,
        ),
        migrations.AddIndex(
            model_name='notificationevent',
            index=models.Index(condition=models.Q(('last_attempt_at__isnull', False)), fields=['-last_attempt_at'], name='notif_last_attempt_idx'),
        ),
    ]
