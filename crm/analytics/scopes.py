"""Whose customers a manager's or the boss's view reads: one home for the views' scope rule.

A manager reads their team, the boss everyone (or one team, by `team_id`); reps are refused,
as these are the managers' views (PRODUCT.md). Another team's id answers NotFound, like any
record outside scope. The funnel and the forecast both start here.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from crm.actors import Actor, customer_scope
from crm.errors import Forbidden, NotFound
from models import Customer, Team
from models.users import Role


def team_conditions(
    session: Session, *, actor: Actor, team_id: int | None, view: str
) -> list[ColumnElement[bool]]:
    """The WHERE conditions of the customers `view` may read for the actor (and team)."""
    if actor.is_rep:
        raise Forbidden(f"{view}只对主管和老板开放")
    conditions = [customer_scope(actor)]
    if team_id is not None:
        if session.get(Team, team_id) is None or (
            actor.role is Role.MANAGER and team_id != actor.team_id
        ):
            raise NotFound("团队")
        conditions.append(Customer.team_id == team_id)
    return conditions
