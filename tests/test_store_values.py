"""Values through the store and back, exactly: every column of an alert (read by position),
aware UTC datetimes (SQLite keeps them as fixed-width UTC text), JSON columns."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from watchkeeper.core.domain import Alert, AlertStatus, Severity
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import tables
from watchkeeper.store.database import Database
from watchkeeper.store.json_text import json_text, parse_json_text

T0 = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
ALERT_ID = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"


def every_field_set() -> Alert:
    """An alert whose every field holds a value of its own (no two datetimes alike)."""
    return Alert(
        id=ALERT_ID,
        fingerprint="am:fingerprint",
        name="DiskFull",
        check="disk",
        rule="disk-rule",
        severity=Severity.HIGH,
        status=AlertStatus.ACKNOWLEDGED,
        started_at=T0,
        resolved_at=T0 + timedelta(seconds=1),
        summary="disk 95 % on café-1",
        labels={"alertname": "DiskFull", "host": "café-1", "quote": '"\\\u2028'},
        suppressed_reason="suppressed: maintenance",
        notified_at=T0 + timedelta(seconds=2),
        source="external",
        silenced_by="silence-1",
        acknowledged_at=T0 + timedelta(seconds=3),
        acknowledged_by="ada",
        escalation_policy="db-team",
        escalation_step=2,
        next_escalation_at=T0 + timedelta(seconds=4),
        paged_channels=["ops", "chat"],
        ack_notified_at=T0 + timedelta(seconds=5),
        resolved_notified_at=T0 + timedelta(seconds=6),
        group_key="group:ops|zone=eu",
        updated_at=T0 + timedelta(seconds=7),
        ends_at=T0 + timedelta(seconds=8),
        annotations={"summary": "日本語", "runbook_url": "https://example.com/rb"},
        generator_url="http://prometheus:9090/graph?g0.expr=up",
    )


async def store(db: Database, alert: Alert) -> None:
    row = {
        "check_name": alert.check,
        "rule_name": alert.rule,
        **{f: getattr(alert, f) for f in Alert.__dataclass_fields__ if f not in ("check", "rule")},
    }
    row.update(severity=alert.severity.value, status=alert.status.value)
    async with db.begin() as conn:
        await conn.execute(tables.alerts.insert().values(**row))


async def test_every_column_of_an_alert_comes_back_as_written(db: Database) -> None:
    alert = every_field_set()
    await store(db, alert)
    async with db.connect() as conn:
        found = await alert_store.by_ids(conn, [alert.id])
    assert found[alert.id] == alert
    assert found[alert.id].started_at.tzinfo is UTC


async def test_sqlite_keeps_utc_text_of_one_width_and_reads_it_back_aware(
    sqlite_db: Database,
) -> None:
    # Ordered comparisons in SQL are text comparisons on SQLite: every value is UTC and
    # carries its microseconds, so text order is time order.
    written = {
        "whole second": datetime(2030, 1, 1, 12, 0, tzinfo=UTC),
        "two hours east": datetime(2030, 1, 1, 14, 0, 0, 5, tzinfo=timezone(timedelta(hours=2))),
    }
    await store(sqlite_db, every_field_set())
    async with sqlite_db.begin() as conn:
        for name, at in written.items():
            await conn.execute(
                tables.alert_events.insert().values(alert_id=ALERT_ID, kind=name, at=at)
            )
    async with sqlite_db.connect() as conn:
        raw = (await conn.execute(text("SELECT kind, at FROM alert_events ORDER BY at"))).all()
        read = await conn.execute(select(tables.alert_events.c.kind, tables.alert_events.c.at))
        back = dict(read.all())
    assert [tuple(r) for r in raw] == [
        ("whole second", "2030-01-01 12:00:00.000000"),
        ("two hours east", "2030-01-01 12:00:00.000005"),
    ]
    assert back == written
    assert all(at.tzinfo is UTC for at in back.values())


async def test_sqlite_reads_text_written_with_a_zone_or_as_a_date(sqlite_db: Database) -> None:
    await store(sqlite_db, every_field_set())
    async with sqlite_db.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO alert_events (alert_id, kind, at) VALUES "
                "(:id, 'zoned', '2030-01-01 12:00:00+02:00'), (:id, 'date', '2030-01-01')"
            ),
            {"id": ALERT_ID},
        )
    async with sqlite_db.connect() as conn:
        read = await conn.execute(select(tables.alert_events.c.kind, tables.alert_events.c.at))
        back = dict(read.all())
    assert back == {
        "zoned": datetime(2030, 1, 1, 10, 0, tzinfo=UTC),
        "date": datetime(2030, 1, 1, tzinfo=UTC),
    }


class _NoOffset(tzinfo):
    """A zone that knows no offset: Python counts its datetimes as naive."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None


@pytest.mark.parametrize("zone", [None, _NoOffset()], ids=["no zone", "no offset"])
async def test_a_naive_datetime_is_refused(db: Database, zone: tzinfo | None) -> None:
    # (Converted to UTC, it would be taken for the machine's local time.)
    await store(db, every_field_set())
    with pytest.raises(StatementError, match="naive datetime"):
        async with db.begin() as conn:
            await conn.execute(
                tables.alert_events.insert().values(
                    alert_id=ALERT_ID, kind="x", at=datetime(2030, 1, 1, tzinfo=zone)
                )
            )


@pytest.mark.parametrize(
    "value",
    [
        {"host": "café", "emoji": "😀", "separator": "\u2028", "quote": '"\\'},
        {"nan": math.nan, "inf": math.inf, "big": 2**70, "nested": [1, 2.5, None, True]},
        # UTF-8 cannot carry a lone surrogate: written escaped, as json.dumps writes it.
        {"path": "/mnt/backup-\udcff"},
    ],
)
def test_json_columns_read_back_what_they_wrote(value: dict[str, Any]) -> None:
    back = parse_json_text(json_text(value))
    assert json.dumps(back) == json.dumps(value)  # (NaN != NaN)
