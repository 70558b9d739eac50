"""users.token_generation: raising it revokes every API token the person holds

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 19:45:00

Tokens carry the generation they were issued in and are refused once it no longer matches, so
revoke-all and deactivation need no list of issued tokens. Existing rows start at 0.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("token_generation", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("token_generation")
