"""contact stats: WeCom's 联系客户统计 per member and day (the rep health score)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 02:00:00
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_stats",
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("chat_cnt", sa.Integer(), nullable=False),
        sa.Column("message_cnt", sa.Integer(), nullable=False),
        sa.Column("reply_percentage", sa.Float(), nullable=True),
        sa.Column("avg_reply_time", sa.Integer(), nullable=True),
        sa.Column("negative_feedback_cnt", sa.Integer(), nullable=False),
        sa.Column("new_apply_cnt", sa.Integer(), nullable=False),
        sa.Column("new_contact_cnt", sa.Integer(), nullable=False),
        sa.Column("fetched_at", models.base.UTCDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("contact_stats")
