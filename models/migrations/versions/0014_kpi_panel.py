"""kpi panel: when each person joined, and follow-ups by time and by planned day

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 01:30:00

The KPI panel (crm/analytics/kpi.py) measures 新人上手周期 from `users.joined_at` (unknown for
people already here: left empty, and such people are left out of that figure) and reads a
period's follow-ups by `happened_at` and the plans due in it by `next_follow_up_on`.
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "users", sa.Column("joined_at", models.base.UTCDateTime(timezone=True), nullable=True)
    )
    op.create_index("ix_follow_ups_happened_at", "follow_ups", ["happened_at"])
    op.create_index("ix_follow_ups_next_follow_up_on", "follow_ups", ["next_follow_up_on"])


def downgrade() -> None:
    op.drop_index("ix_follow_ups_next_follow_up_on", table_name="follow_ups")
    op.drop_index("ix_follow_ups_happened_at", table_name="follow_ups")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("joined_at")
