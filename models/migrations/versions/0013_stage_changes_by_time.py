"""stage changes by time: the team funnel reads a period's moves across all customers

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 01:00:00
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_stage_changes_changed_at", "stage_changes", ["changed_at"])


def downgrade() -> None:
    op.drop_index("ix_stage_changes_changed_at", table_name="stage_changes")
