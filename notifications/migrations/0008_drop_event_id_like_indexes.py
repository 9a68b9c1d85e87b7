from django.db import migrations

# Django gives every CharField foreign key on PostgreSQL a second index, varchar_pattern_ops, for LIKE 'prefix%'.
# Nothing searches attempts or operator actions by an event id prefix, and every attempt the engine records and
# every action a bulk requeue writes paid for an entry in it.
TABLES = ("notification_attempts", "notification_operator_actions")

DROP_LIKE_INDEXES = r"""
DO $$
DECLARE
    name text;
BEGIN
    FOR name IN SELECT indexname FROM pg_indexes
        WHERE tablename = '{table}' AND indexname LIKE '{table}\_event\_id%\_like'
    LOOP
        EXECUTE format('DROP INDEX %I', name);
    END LOOP;
END $$;
"""


def drop_like_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(DROP_LIKE_INDEXES.format(table=table), params=None)


def create_like_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"CREATE INDEX {table}_event_id_like ON {table} (event_id varchar_pattern_ops)", params=None)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0007_history_counts_and_retention")]

    operations = [migrations.RunPython(drop_like_indexes, create_like_indexes)]
