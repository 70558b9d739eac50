"""voice commands: a member's voice message to the app, a recording without a follow-up yet

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 12:00:00

A recording may now be a voice message whose transcript is read as a `#跟进#` command: no
follow-up or attachment until the command logs one; the sender and the stored file instead.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite cannot change nullability or add a foreign key in place: batch mode rebuilds it.
    with op.batch_alter_table("recordings") as batch:
        batch.alter_column("follow_up_id", existing_type=sa.Integer(), nullable=True)
        batch.alter_column("attachment_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("member_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("storage_key", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("size_bytes", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("sha256", sa.String(length=64), nullable=True))
        batch.create_foreign_key(
            op.f("fk_recordings_member_id_users"), "users", ["member_id"], ["id"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM recordings WHERE follow_up_id IS NULL")
    with op.batch_alter_table("recordings") as batch:
        batch.drop_constraint(op.f("fk_recordings_member_id_users"), type_="foreignkey")
        batch.drop_column("sha256")
        batch.drop_column("size_bytes")
        batch.drop_column("storage_key")
        batch.drop_column("member_id")
        batch.alter_column("attachment_id", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("follow_up_id", existing_type=sa.Integer(), nullable=False)
