"""room on customers' pages for grade changes (PostgreSQL)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 21:40:00

Publishing a grading rule set rewrites the grade of tens of thousands of customers at once. The
grade is in no index, so with free room on the page PostgreSQL updates the row in place (a HOT
update) instead of writing a new version into every index of the table. New and rewritten pages
keep 20% free; SQLite has no such setting.
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE customers SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE customers RESET (fillfactor)")
