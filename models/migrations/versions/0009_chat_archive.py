"""the chat archive: archived WeCom messages, conversation windows, consent, the puller's cursor

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 21:22:24

Follow-ups made from a chat keep what was captured (capture) and whether a recall withdrew them
(withdrawn_at); customers keep the time of their own newest chat message.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import models.base

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archive_consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("userid", sa.String(length=64), nullable=False),
        sa.Column("external_userid", sa.String(length=64), nullable=False),
        sa.Column("agreed", sa.Boolean(), nullable=False),
        sa.Column("checked_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_consents")),
        sa.UniqueConstraint("userid", "external_userid", name=op.f("uq_archive_consents_userid")),
    )
    op.create_table(
        "archive_cursors",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("last_pull_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_archive_cursors")),
    )
    op.create_table(
        "chat_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("roomid", sa.String(length=64), nullable=False),
        sa.Column("first_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("rep_wrote", sa.Boolean(), nullable=False),
        sa.Column(
            "categories",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "keywords",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "risks",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("follow_up_id", sa.Integer(), nullable=True),
        sa.Column("closed_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_chat_windows_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["follow_up_id"],
            ["follow_ups.id"],
            name=op.f("fk_chat_windows_follow_up_id_follow_ups"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_chat_windows_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_windows")),
    )
    with op.batch_alter_table("chat_windows", schema=None) as batch_op:
        batch_op.create_index(
            "ix_chat_windows_conversation", ["customer_id", "user_id", "roomid"], unique=False
        )
        batch_op.create_index("ix_chat_windows_open", ["closed_at", "last_at"], unique=False)

    op.create_table(
        "archive_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("msgid", sa.String(length=128), nullable=False),
        sa.Column("origin", sa.String(length=8), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("msgtype", sa.String(length=32), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column(
            "tolist",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("roomid", sa.String(length=64), nullable=True),
        sa.Column("sent_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("skip_reason", sa.String(length=32), nullable=True),
        sa.Column("recalls_msgid", sa.String(length=128), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("window_id", sa.Integer(), nullable=True),
        sa.Column("transcript_status", sa.String(length=16), nullable=True),
        sa.Column(
            "media",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_archive_messages_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_archive_messages_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["window_id"],
            ["chat_windows.id"],
            name=op.f("fk_archive_messages_window_id_chat_windows"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_messages")),
        sa.UniqueConstraint("msgid", name=op.f("uq_archive_messages_msgid")),
    )
    with op.batch_alter_table("archive_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_archive_messages_recalls_msgid"), ["recalls_msgid"], unique=False
        )
        batch_op.create_index(
            "ix_archive_messages_status_sent", ["status", "sent_at"], unique=False
        )
        batch_op.create_index("ix_archive_messages_window", ["window_id"], unique=False)

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "last_customer_message_at", models.base.UTCDateTime(timezone=True), nullable=True
            )
        )

    with op.batch_alter_table("follow_ups", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "capture",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column("withdrawn_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("follow_ups", schema=None) as batch_op:
        batch_op.drop_column("withdrawn_at")
        batch_op.drop_column("capture")

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("last_customer_message_at")

    with op.batch_alter_table("archive_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_archive_messages_window")
        batch_op.drop_index("ix_archive_messages_status_sent")
        batch_op.drop_index(batch_op.f("ix_archive_messages_recalls_msgid"))

    op.drop_table("archive_messages")
    with op.batch_alter_table("chat_windows", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_windows_open")
        batch_op.drop_index("ix_chat_windows_conversation")

    op.drop_table("chat_windows")
    op.drop_table("archive_cursors")
    op.drop_table("archive_consents")
