"""settings follow the org chart: rule-set versions and email templates belong to a team
or the company

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 18:45:00

A NULL team_id is the company's (the boss's); a team's rule set overrides the company's for that
team's customers. Template names are unique per scope instead of company-wide.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rule_set_versions") as batch:
        batch.add_column(sa.Column("team_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_rule_set_versions_team_id_teams"), "teams", ["team_id"], ["id"]
        )
    with op.batch_alter_table("email_templates") as batch:
        batch.add_column(sa.Column("team_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_email_templates_team_id_teams"), "teams", ["team_id"], ["id"]
        )
        batch.drop_constraint(op.f("uq_email_templates_name"), type_="unique")
    op.create_index(
        "uq_email_templates_scope_name",
        "email_templates",
        [sa.text("coalesce(team_id, 0)"), "name"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_email_templates_scope_name", table_name="email_templates")
    with op.batch_alter_table("email_templates") as batch:
        batch.create_unique_constraint(op.f("uq_email_templates_name"), ["name"])
        batch.drop_constraint(op.f("fk_email_templates_team_id_teams"), type_="foreignkey")
        batch.drop_column("team_id")
    with op.batch_alter_table("rule_set_versions") as batch:
        batch.drop_constraint(op.f("fk_rule_set_versions_team_id_teams"), type_="foreignkey")
        batch.drop_column("team_id")
