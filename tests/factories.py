"""Rows for tests: a small company, customers, and signing in through the real login flow."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from crm import customer_changes
from crm.actors import Actor
from fake_wecom.server import FakeWeCom
from models import Customer, Team, User
from models.users import Role

_codes = itertools.count(1)


@dataclass
class Company:
    """Two teams of two reps each, a manager per team, and the boss."""

    boss: User
    teams: list[Team]
    managers: list[User]
    reps: list[list[User]]  # reps[team index]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def everyone(self) -> list[User]:
        return [self.boss, *self.managers, *(r for team in self.reps for r in team)]


def make_company(session: Session) -> Company:
    teams = [
        Team(name="长沙一组", wecom_department_id=2),
        Team(name="株洲二组", wecom_department_id=3),
    ]
    session.add_all(teams)
    session.flush()
    boss = User(wecom_userid="boss", name="王总", role=Role.BOSS, is_active=True)
    managers, reps = [], []
    for index, team in enumerate(teams):
        manager = User(
            wecom_userid=f"manager{index}",
            name=f"主管{index}",
            role=Role.MANAGER,
            team_id=team.id,
            is_active=True,
        )
        session.add(manager)
        session.flush()
        managers.append(manager)
        team_reps = [
            User(
                wecom_userid=f"rep{index}{n}",
                name=f"销售{index}{n}",
                role=Role.REP,
                team_id=team.id,
                manager_id=manager.id,
                is_active=True,
            )
            for n in range(2)
        ]
        session.add_all(team_reps)
        reps.append(team_reps)
    session.add(boss)
    session.flush()
    session.commit()
    return Company(boss=boss, teams=teams, managers=managers, reps=reps)


def make_customer(session: Session, owner: User, now: datetime, **values: Any) -> Customer:
    """A customer created the way the API creates one, owned by `owner`."""
    values.setdefault("name", f"客户{next(_codes)}")
    stage = values.pop("stage", "潜在")
    tags = values.pop("tags", None)
    custom = values.pop("custom_values", None)
    customer = customer_changes.create_customer(
        session,
        actor=Actor.of(owner),
        values=values,
        now=now,
        owner_id=owner.id,
        stage=stage,
        tags=tags,
        custom_values=custom,
    )
    session.commit()
    return customer


def sign_in(client: FlaskClient, fake_wecom: FakeWeCom, user: User) -> dict[str, str]:
    """Sign in through jscode2session on the fake WeCom server; returns the auth header."""
    code = f"code-{user.wecom_userid}-{next(_codes)}"
    fake_wecom.register_code(code, user.wecom_userid)
    response = client.post("/api/v1/auth/login", json={"code": code})
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['token']}"}
