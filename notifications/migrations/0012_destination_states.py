"""Breaker and pause state per destination (issue 23): notification_destination_states replaces
notification_channel_states (each channel's row becomes its environment destination's), and pauses are audited as
configuration actions (notification_channel_actions' rows are copied there). The /metrics totals are kept per
destination (a channel's so far: its environment destination's)."""
import django.db.models.deletion
from django.db import migrations, models

CHANNELS = ["Email", "Webhook", "Slack", "Teams", "PagerDuty", "OpsGenie"]
STATE_FIELDS = [
    "consecutive_failures", "failing_events", "window_started_at", "window_successes", "window_failures",
    "previous_window_successes", "previous_window_failures", "last_success_at", "opened_at", "next_probe_at",
    "paused_at", "paused_by",
]


def per_destination(apps, schema_editor):
    Destination = apps.get_model("notifications", "Destination")
    Destination.objects.bulk_create(
        [Destination(name=channel, channel=channel, from_environment=True) for channel in CHANNELS],
        ignore_conflicts=True,
    )
    ChannelState = apps.get_model("notifications", "ChannelState")
    DestinationState = apps.get_model("notifications", "DestinationState")
    DestinationState.objects.bulk_create(
        DestinationState(destination_id=state.channel, **{name: getattr(state, name) for name in STATE_FIELDS})
        for state in ChannelState.objects.all()
    )
    ChannelAction = apps.get_model("notifications", "ChannelAction")
    ConfigurationAction = apps.get_model("notifications", "ConfigurationAction")
    ConfigurationAction.objects.bulk_create(
        ConfigurationAction(
            target_kind="destination", target=action.channel, action=action.action, actor=action.actor,
            source=action.source, created_at=action.created_at,
        )
        for action in ChannelAction.objects.order_by("created_at", "id")
    )
    DeliveryTotal = apps.get_model("notifications", "DeliveryTotal")
    DeliveryTotal.objects.update(destination=models.F("channel"))


def per_channel(apps, schema_editor):
    """Back to one state per channel: the environment destinations' rows (stored destinations' are lost), their
    pauses and resumes, and the totals summed per channel."""
    ChannelState = apps.get_model("notifications", "ChannelState")
    DestinationState = apps.get_model("notifications", "DestinationState")
    ChannelState.objects.bulk_create(
        ChannelState(channel=state.destination_id, **{name: getattr(state, name) for name in STATE_FIELDS})
        for state in DestinationState.objects.filter(destination__in=CHANNELS)
    )
    ChannelAction = apps.get_model("notifications", "ChannelAction")
    ConfigurationAction = apps.get_model("notifications", "ConfigurationAction")
    pauses = ConfigurationAction.objects.filter(
        target_kind="destination", target__in=CHANNELS, action__in=["pause", "resume"]
    )
    ChannelAction.objects.bulk_create(
        ChannelAction(
            channel=action.target, action=action.action, actor=action.actor, source=action.source,
            created_at=action.created_at,
        )
        for action in pauses.order_by("created_at", "id")
    )
    pauses.delete()
    DeliveryTotal = apps.get_model("notifications", "DeliveryTotal")
    by_channel = {}
    for total in DeliveryTotal.objects.order_by("id"):
        kept = by_channel.setdefault((total.channel, total.outcome), total)
        if kept is not total:
            kept.attempts += total.attempts
            kept.dead_lettered += total.dead_lettered
            kept.duration_ms_sum += total.duration_ms_sum
            kept.duration_buckets = [a + b for a, b in zip(kept.duration_buckets, total.duration_buckets, strict=True)]
            total.delete()
    for total in by_channel.values():
        total.save()


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0011_destinations_and_routes'),
    ]

    operations = [
        migrations.CreateModel(
            name='DestinationState',
            fields=[
                ('destination', models.OneToOneField(db_column='destination', on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='state', serialize=False, to='notifications.destination')),
                ('consecutive_failures', models.PositiveIntegerField(default=0)),
                ('failing_events', models.JSONField(default=list)),
                ('window_started_at', models.DateTimeField(blank=True, null=True)),
                ('window_successes', models.PositiveIntegerField(default=0)),
                ('window_failures', models.PositiveIntegerField(default=0)),
                ('previous_window_successes', models.PositiveIntegerField(default=0)),
                ('previous_window_failures', models.PositiveIntegerField(default=0)),
                ('last_success_at', models.DateTimeField(blank=True, null=True)),
                ('opened_at', models.DateTimeField(blank=True, null=True)),
                ('next_probe_at', models.DateTimeField(blank=True, null=True)),
                ('paused_at', models.DateTimeField(blank=True, null=True)),
                ('paused_by', models.CharField(blank=True, default='', max_length=150)),
            ],
            options={
                'db_table': 'notification_destination_states',
                'constraints': [models.CheckConstraint(condition=models.Q(('opened_at__isnull', True), ('next_probe_at__isnull', False), _connector='OR'), name='notification_destination_state_open_has_probe'), models.CheckConstraint(condition=models.Q(('window_started_at__isnull', False), models.Q(('previous_window_failures', 0), ('previous_window_successes', 0), ('window_failures', 0), ('window_successes', 0)), _connector='OR'), name='notification_destination_state_counts_have_window')],
            },
        ),
        migrations.AddField(
            model_name='deliverytotal',
            name='destination',
            field=models.CharField(default='', max_length=64),
            preserve_default=False,
        ),
        migrations.RemoveConstraint(
            model_name='deliverytotal',
            name='notification_delivery_total_unique',
        ),
        migrations.RunPython(per_destination, per_channel),
        migrations.AddConstraint(
            model_name='deliverytotal',
            constraint=models.UniqueConstraint(fields=('destination', 'outcome'), name='notification_delivery_total_destination_unique'),
        ),
        migrations.DeleteModel(
            name='ChannelAction',
        ),
        migrations.DeleteModel(
            name='ChannelState',
        ),
    ]
