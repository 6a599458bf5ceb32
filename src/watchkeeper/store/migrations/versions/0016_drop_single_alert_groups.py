"""alert_groups: no row for an alert paged alone

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 04:00:00

Without `group_by` each alert is its own group (`alert:<id>`), paged once: its row was
written at the first page and never read (a later page of the alert is an escalation or a
repeat, which go by the alert's own times), so the table grew by a row per alert, forever,
and each new alert paid for the write. The dispatcher no longer writes them; these are the
ones written before.
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM alert_groups WHERE key LIKE 'alert:%'")


def downgrade() -> None:
    pass  # nothing read them
