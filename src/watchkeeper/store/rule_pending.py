"""Metric-rule series whose condition holds, kept so a restart continues their `for` wait."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from watchkeeper.store import tables
from watchkeeper.store.database import Database, upsert

T = tables.rule_pending


@dataclass(frozen=True, slots=True)
class PendingSeries:
    rule: str
    labels: dict[str, str]
    active_since: datetime
    """When the condition started to hold."""
    sampled_at: datetime
    """The latest sample known when this was written."""


def series_id(labels: dict[str, str]) -> str:
    """A fixed-size key for a label set (label sets may be long)."""
    text = "\x00".join(f"{k}={v}" for k, v in sorted(labels.items()))
    # surrogatepass: labels from a check's output may hold text that is not valid UTF-8.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


async def load_pending(db: Database) -> list[PendingSeries]:
    async with db.connect() as conn:
        rows = (await conn.execute(select(T))).all()
    return [PendingSeries(r.rule_name, dict(r.labels), r.active_since, r.sampled_at) for r in rows]


async def write_pending(
    db: Database,
    save: list[PendingSeries],
    drop: list[tuple[str, dict[str, str]]],
    *,
    drop_rules: Sequence[str] = (),
) -> None:
    """In one transaction: store `save`, forget the `drop` series and every series of
    `drop_rules`."""
    if not (save or drop or drop_rules):
        return
    async with db.begin() as conn:
        if drop_rules:
            await conn.execute(delete(T).where(T.c.rule_name.in_(drop_rules)))
        by_rule: dict[str, list[str]] = {}
        for rule, labels in drop:
            by_rule.setdefault(rule, []).append(series_id(labels))
        for rule, ids in by_rule.items():
            await conn.execute(delete(T).where(T.c.rule_name == rule, T.c.series.in_(ids)))
        rows = [
            {
                "rule_name": p.rule,
                "series": series_id(p.labels),
                "labels": p.labels,
                "active_since": p.active_since,
                "sampled_at": p.sampled_at,
            }
            for p in save
        ]
        await upsert(conn, T, rows, ["rule_name", "series"])
