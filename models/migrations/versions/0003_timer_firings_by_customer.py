"""timer firings keyed by customer first

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 20:55:00

A sweep asks, per candidate customer, whether a step already fired for its clock. With the rule
first in the key PostgreSQL materialised every firing of the rule and scanned it per customer
(0.8 s a sweep at 60,000 firings); with the customer first it is one index probe.
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("timer_firings") as batch:
        batch.drop_constraint("uq_timer_firings_rule", type_="unique")
        batch.drop_index("ix_timer_firings_customer_id")
        batch.create_unique_constraint(
            "uq_timer_firings_customer_id", ["customer_id", "rule", "step", "anchor_at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("timer_firings") as batch:
        batch.drop_constraint("uq_timer_firings_customer_id", type_="unique")
        batch.create_index("ix_timer_firings_customer_id", ["customer_id"])
        batch.create_unique_constraint(
            "uq_timer_firings_rule", ["rule", "step", "customer_id", "anchor_at"]
        )
