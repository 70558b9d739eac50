"""archived voice: an archived voice message is a recording; windows settle after closing

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 13:00:00

A chat archive's voice message with fetched bytes gets a Recording (`archive_message_id`), the
one source of its transcript, so `archive_messages.transcript_status` goes. A conversation
window closes (no message joins it) before it settles (its follow-up or contact written, once
its voice messages are transcribed): `chat_windows.settled_at`, which a window closed before
this revision has at its closing time.
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite cannot add a foreign key or drop a column in place: batch mode rebuilds the table.
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("archive_message_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_recordings_archive_message_id_archive_messages"),
            "archive_messages",
            ["archive_message_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_unique_constraint(
            op.f("uq_recordings_archive_message_id"), ["archive_message_id"]
        )
    with op.batch_alter_table("chat_windows") as batch:
        batch.add_column(
            sa.Column("settled_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch.create_index("ix_chat_windows_unsettled", ["settled_at", "closed_at"], unique=False)
    op.execute("UPDATE chat_windows SET settled_at = closed_at")
    with op.batch_alter_table("archive_messages") as batch:
        batch.drop_column("transcript_status")


def downgrade() -> None:
    with op.batch_alter_table("archive_messages") as batch:
        batch.add_column(sa.Column("transcript_status", sa.String(length=16), nullable=True))
    op.execute(
        "UPDATE archive_messages SET transcript_status = 'pending'"
        " WHERE msgtype = 'voice' AND status = 'captured'"
    )
    # Before this revision a window settled as it closed: one still waiting for its voice
    # messages stays without a follow-up.
    with op.batch_alter_table("chat_windows") as batch:
        batch.drop_index("ix_chat_windows_unsettled")
        batch.drop_column("settled_at")
    # An archived voice message's recording not yet in a follow-up has no owner left.
    op.execute(
        "DELETE FROM recordings WHERE archive_message_id IS NOT NULL AND follow_up_id IS NULL"
    )
    with op.batch_alter_table("recordings") as batch:
        batch.drop_constraint(op.f("uq_recordings_archive_message_id"), type_="unique")
        batch.drop_constraint(
            op.f("fk_recordings_archive_message_id_archive_messages"), type_="foreignkey"
        )
        batch.drop_column("archive_message_id")
