"""rules, tasks, pool and outbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 19:44:02.459877
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import models.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rule_set_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "document",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("note", sa.String(length=255), nullable=True),
        sa.Column("rolled_back_from", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.Integer(), nullable=True),
        sa.Column("published_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_rule_set_versions_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["published_by"], ["users.id"], name=op.f("fk_rule_set_versions_published_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_set_versions")),
        sa.UniqueConstraint("kind", "version", name=op.f("uq_rule_set_versions_kind")),
    )
    op.create_index(
        "ix_rule_set_versions_kind_status", "rule_set_versions", ["kind", "status"], unique=False
    )
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("touser", sa.String(length=64), nullable=False),
        sa.Column("msgtype", sa.String(length=16), nullable=False),
        sa.Column(
            "content",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=191), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_outbox_messages_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"], ["users.id"], name=op.f("fk_outbox_messages_recipient_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_messages_dedupe_key")),
    )
    op.create_index(
        op.f("ix_outbox_messages_recipient_id"), "outbox_messages", ["recipient_id"], unique=False
    )
    op.create_index(
        "ix_outbox_status_next", "outbox_messages", ["status", "next_attempt_at"], unique=False
    )
    op.create_table(
        "pool_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_pool_events_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_pool_events_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_pool_events_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool_events")),
    )
    op.create_index(
        "ix_pool_events_customer_at", "pool_events", ["customer_id", "at"], unique=False
    )
    op.create_index(
        "ix_pool_events_user_kind_at", "pool_events", ["user_id", "kind", "at"], unique=False
    )
    op.create_table(
        "timer_firings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("anchor_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fired_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_timer_firings_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timer_firings")),
        sa.UniqueConstraint(
            "rule", "step", "customer_id", "anchor_at", name=op.f("uq_timer_firings_rule")
        ),
    )
    op.create_index(
        op.f("ix_timer_firings_customer_id"), "timer_firings", ["customer_id"], unique=False
    )
    op.add_column("customers", sa.Column("next_follow_up_on", sa.Date(), nullable=True))
    op.add_column(
        "customers", sa.Column("released_at", models.base.UTCDateTime(timezone=True), nullable=True)
    )
    op.add_column("customers", sa.Column("release_reason", sa.String(length=255), nullable=True))
    op.create_index(
        "ix_customers_owner_next_follow_up",
        "customers",
        ["owner_id", "next_follow_up_on"],
        unique=False,
    )
    # SQLite cannot add a foreign key to an existing table: batch mode rebuilds it there.
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("created_by", sa.Integer(), nullable=True))
        batch.create_index("ix_tasks_cc_status", ["cc_id", "status"], unique=False)
        batch.create_foreign_key(op.f("fk_tasks_created_by_users"), "users", ["created_by"], ["id"])
    # The plan of each customer's newest follow-up.
    op.execute(
        "UPDATE customers SET next_follow_up_on = ("
        " SELECT f.next_follow_up_on FROM follow_ups f WHERE f.customer_id = customers.id"
        " ORDER BY f.happened_at DESC, f.id DESC LIMIT 1)"
    )


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_constraint(op.f("fk_tasks_created_by_users"), type_="foreignkey")
        batch.drop_index("ix_tasks_cc_status")
        batch.drop_column("created_by")
    op.drop_index("ix_customers_owner_next_follow_up", table_name="customers")
    op.drop_column("customers", "release_reason")
    op.drop_column("customers", "released_at")
    op.drop_column("customers", "next_follow_up_on")
    op.drop_index(op.f("ix_timer_firings_customer_id"), table_name="timer_firings")
    op.drop_table("timer_firings")
    op.drop_index("ix_pool_events_user_kind_at", table_name="pool_events")
    op.drop_index("ix_pool_events_customer_at", table_name="pool_events")
    op.drop_table("pool_events")
    op.drop_index("ix_outbox_status_next", table_name="outbox_messages")
    op.drop_index(op.f("ix_outbox_messages_recipient_id"), table_name="outbox_messages")
    op.drop_table("outbox_messages")
    op.drop_index("ix_rule_set_versions_kind_status", table_name="rule_set_versions")
    op.drop_table("rule_set_versions")
