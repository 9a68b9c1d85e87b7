"""A claim reads as many index entries as it claims: PostgreSQL's plan of the claim statement walks the kind's
partial index in claim order, with no scan of the table and no sort of everything that is due."""
import pytest
from django.db import connection, transaction

from notifications.engine import claims
from tests.lifecycle.conftest import T0

pytestmark = pytest.mark.postgres

# Mostly history, as in a year of operation: 20,000 sent events, 400 due retries, 400 pending.
HISTORY_SQL = """
INSERT INTO notification_events (id, type, channel, recipient, message, status, retry_count, next_retry_at,
    last_error, sent_at, created_at, updated_at)
SELECT 'notif-plan-' || lpad(n::text, 8, '0'), 'ExpirationWarning', 'Webhook', 'ops@example.com', 'expires soon',
    CASE WHEN n %% 50 = 0 THEN 'failed' WHEN n %% 50 = 1 THEN 'pending' ELSE 'sent' END,
    CASE WHEN n %% 50 = 0 THEN 2 ELSE 0 END,
    CASE WHEN n %% 50 = 0 THEN %(now)s - n * interval '1 second' END,
    CASE WHEN n %% 50 = 0 THEN 'HTTP 500' END,
    CASE WHEN n %% 50 > 1 THEN %(now)s - n * interval '1 minute' END,
    %(now)s - n * interval '1 minute', %(now)s - n * interval '1 minute'
FROM generate_series(1, 20800) AS n
"""


@pytest.fixture
def history(db):
    with connection.cursor() as cursor:
        cursor.execute(HISTORY_SQL, {"now": T0})
        cursor.execute("ANALYZE notification_events")


def claim_plan(kind):
    """EXPLAIN of the statement claim_due_events sends, taken as it sends it; the claim is rolled back."""
    statements = []

    def capture(execute, sql, params, many, context):
        if sql.lstrip().startswith("UPDATE"):
            statements.append((sql, params))
        return execute(sql, params, many, context)

    with transaction.atomic():
        with connection.execute_wrapper(capture):
            claimed = claims.claim_due_events(kind, now=T0, limit=100)
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + statements[0][0], statements[0][1])
            plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    return claimed, plan


@pytest.mark.parametrize(("kind", "index"), [("retry", "notif_retry_sweep_idx"), ("pending", "notif_pending_idx")])
def test_the_claim_walks_its_partial_index_in_order(history, kind, index):
    claimed, plan = claim_plan(kind)

    assert len(claimed) == 100
    assert f"Index Scan using {index} on notification_events" in plan, plan
    assert "Seq Scan" not in plan, plan
    assert "Sort" not in plan, plan


def test_the_claimed_rows_come_back_from_the_statement_in_claim_order_without_another_query(history):
    selects = []

    def count_selects(execute, sql, params, many, context):
        if sql.lstrip().startswith("SELECT"):
            selects.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count_selects):
        claimed = claims.claim_due_events("retry", now=T0, limit=100)

    assert selects == []
    assert [event.next_retry_at for event in claimed] == sorted(event.next_retry_at for event in claimed)
    assert all(event.claim_token == claimed[0].claim_token and event.claimed_until for event in claimed)


@pytest.mark.django_db
def test_the_history_tables_keep_no_index_a_write_pays_for_and_no_query_uses():
    """Django adds a LIKE-prefix index (varchar_pattern_ops) to every CharField key on PostgreSQL. Ids are
    looked up whole, so on the tables each delivery or bulk requeue writes to, such an index is only a cost."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, indexname FROM pg_indexes WHERE tablename IN "
            "('notification_events', 'notification_attempts', 'notification_operator_actions') "
            "AND indexdef LIKE '%%pattern_ops%%'"
        )
        assert cursor.fetchall() == []
