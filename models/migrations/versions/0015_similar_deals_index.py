"""similar deals index: each customer's document as term counts (crm/similar.py)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 01:30:00
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_documents",
        sa.Column(
            "customer_id",
            sa.Integer(),
            sa.ForeignKey("customers.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "customer_terms",
        sa.Column(
            "customer_id",
            sa.Integer(),
            sa.ForeignKey("customers.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("term", sa.String(64), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    op.create_index("ix_customer_terms_term", "customer_terms", ["term", "customer_id"])


def downgrade() -> None:
    op.drop_index("ix_customer_terms_term", table_name="customer_terms")
    op.drop_table("customer_terms")
    op.drop_table("customer_documents")
