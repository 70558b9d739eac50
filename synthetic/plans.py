"""What a synthetic company is made of, before any database: its org chart and its customers.

People, teams and custom fields are named by keys (a WeCom userid, a team index, a field key),
never by database ids, so one plan can be written by the domain's services (the demo) or as
bulk rows (the benchmarks). `synthetic.rows` turns a plan into rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from crm.vocab import ContactMethod, Stage
from models.users import Role

# The job title each role carries in the WeCom directory.
POSITIONS = {Role.BOSS: "总经理", Role.MANAGER: "销售主管", Role.REP: "销售代表"}


@dataclass(frozen=True)
class TeamPlan:
    name: str
    department_id: int  # the team's WeCom department
    regions: tuple[str, ...] = ()


@dataclass(frozen=True)
class PersonPlan:
    userid: str  # WeCom userid
    name: str
    role: Role
    team: int | None  # index into Org.teams; the boss sits in the root department
    mobile: str
    position: str
    email: str
    joined_days_ago: int = 720


@dataclass(frozen=True)
class FieldPlan:
    key: str
    label: str
    kind: str
    options: tuple[str, ...] = ()
    is_required: bool = False
    is_tag_dimension: bool = False


@dataclass(frozen=True)
class Org:
    """The company: its teams, its people (the boss first) and its custom customer fields."""

    name: str
    teams: tuple[TeamPlan, ...]
    people: tuple[PersonPlan, ...]
    fields: tuple[FieldPlan, ...]

    @property
    def boss(self) -> PersonPlan:
        return next(p for p in self.people if p.role is Role.BOSS)

    @property
    def reps(self) -> list[PersonPlan]:
        return [p for p in self.people if p.role is Role.REP]

    def manager_of(self, team: int) -> PersonPlan:
        """The manager of a team (by index)."""
        return next(p for p in self.people if p.team == team and p.role is Role.MANAGER)

    @property
    def required_field_keys(self) -> list[str]:
        return [f.key for f in self.fields if f.is_required]


@dataclass
class PlannedAttachment:
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    storage_key: str


@dataclass
class PlannedFollowUp:
    at: datetime
    method: ContactMethod
    summary: str
    author: str  # userid
    next_plan: str | None = None
    next_follow_up_on: date | None = None
    attachments: list[PlannedAttachment] = field(default_factory=list)


@dataclass
class PlannedMove:
    at: datetime
    from_stage: Stage | None
    to_stage: Stage
    cause: str
    actor: str | None  # userid; None: the rules moved it


@dataclass
class PlannedTask:
    title: str
    due_at: datetime
    created_at: datetime
    is_done: bool
    assignee: str  # userid
    cc: str | None = None
    origin: str = "manual"


@dataclass
class PlannedCustomer:
    """One customer and its history; owned by a rep (a userid) or, released, by nobody."""

    values: dict[str, Any]  # Customer columns, except ids, owners, timestamps and completeness
    owner: str | None
    team: int | None  # index into Org.teams
    created_at: datetime
    moves: list[PlannedMove]  # oldest first, the first one the creation (from_stage None)
    follow_ups: list[PlannedFollowUp]  # oldest first
    tags: list[str]
    custom_values: dict[str, Any]
    tasks: list[PlannedTask] = field(default_factory=list)
    released_by: str | None = None  # the owner the pool took it from
    released_at: datetime | None = None
    release_reason: str | None = None

    @property
    def stage(self) -> Stage:
        return self.moves[-1].to_stage
