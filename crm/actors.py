"""Who is acting, and the scope that follows: rep sees own, manager the team, boss all."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, true

from models import Customer, User
from models.users import Role


@dataclass(frozen=True)
class Actor:
    """The signed-in person, as every service sees them."""

    user_id: int
    role: Role
    team_id: int | None
    name: str = ""

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(user_id=user.id, role=Role(user.role), team_id=user.team_id, name=user.name)

    @property
    def is_rep(self) -> bool:
        return self.role is Role.REP

    @property
    def can_manage(self) -> bool:
        """Managers and the boss reassign, edit fields and import for others."""
        return self.role in (Role.MANAGER, Role.BOSS)


def customer_scope(actor: Actor) -> ColumnElement[bool]:
    """The WHERE clause that limits every customer query to what the actor may see."""
    if actor.role is Role.BOSS:
        return true()
    if actor.role is Role.MANAGER:
        return Customer.team_id == actor.team_id if actor.team_id is not None else false()
    return Customer.owner_id == actor.user_id


def user_scope(actor: Actor) -> ColumnElement[bool]:
    """The people an actor may see or assign work to."""
    if actor.role is Role.BOSS:
        return true()
    if actor.role is Role.MANAGER:
        return User.team_id == actor.team_id if actor.team_id is not None else false()
    return User.id == actor.user_id
