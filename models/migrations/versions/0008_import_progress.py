"""imports commit batch by batch: the rows done so far and a heartbeat on the import

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 19:45:00

processed_rows is committed with each batch of rows; heartbeat_at lets a sweep fail an import
whose worker died.
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("import_jobs") as batch:
        batch.add_column(
            sa.Column("processed_rows", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("heartbeat_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("import_jobs") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("processed_rows")
