"""The rule sets in force: the one place every engine (and the pool) reads them.

Rule sets follow the org chart. Each kind has at most one active version per scope: the
company's (team_id None, the boss's) and each team's (its manager's). For a customer the set in
force is its team's if the team has one, else the company's, else the default pack (version 0).
Engines that work on one customer ask `active`/`active_sets` with its team; bulk work (a timer
sweep) asks `governing` for every set with whom it governs, so each set runs as one SQL statement
over its own customers; a publish and its preview ask `scope` for one of them. Writing versions
(drafts, publish, rollback) is `crm.rules.publisher`'s job.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.orm import Session

from crm.rulesets.defaults import DEFAULT_DOCUMENTS
from models import RuleSetVersion
from models.rules import RuleSetStatus


@dataclass(frozen=True)
class ActiveRuleSet:
    kind: str
    version: int  # 0: the built-in default pack, never published
    document: dict[str, Any]
    team_id: int | None = None  # whose version it is: None for the company's (or the default)


@dataclass(frozen=True)
class Governing:
    """A rule set in force and whom it governs: a team's own customers (and people), or for the
    company's everyone whose team has no set of its own (and those of no team)."""

    rule_set: ActiveRuleSet
    team_id: int | None  # the scope: a team, or None for the company
    other_teams: tuple[int, ...] = ()  # for the company's: the teams with a set of their own

    def covers(self, team_column: Any) -> ColumnElement[bool]:
        """The rows this set governs, by their team column (Customer.team_id, User.team_id)."""
        if self.team_id is not None:
            return team_column == self.team_id
        if not self.other_teams:
            return true()
        return or_(team_column.is_(None), team_column.not_in(self.other_teams))


def in_scope(team_id: int | None) -> ColumnElement[bool]:
    """Rule-set versions of one scope: a team's, or the company's (team_id None)."""
    if team_id is None:
        return RuleSetVersion.team_id.is_(None)
    return RuleSetVersion.team_id == team_id


def active(session: Session, kind: str, team_id: int | None = None) -> ActiveRuleSet:
    """The rule set of `kind` in force for a team's customers (None: the company's)."""
    return active_sets(session, (kind,), team_id)[kind]


def active_sets(
    session: Session, kinds: Iterable[str], team_id: int | None = None
) -> dict[str, ActiveRuleSet]:
    """Several kinds' rule sets in force for a team's customers, read in one statement."""
    wanted = tuple(kinds)
    scopes = in_scope(None) if team_id is None else or_(in_scope(None), in_scope(team_id))
    found: dict[str, ActiveRuleSet] = {}
    for row in session.execute(
        select(
            RuleSetVersion.kind,
            RuleSetVersion.version,
            RuleSetVersion.document,
            RuleSetVersion.team_id,
        ).where(
            RuleSetVersion.kind.in_(wanted), RuleSetVersion.status == RuleSetStatus.ACTIVE, scopes
        )
    ):
        if row.kind not in found or row.team_id is not None:  # the team's wins
            found[row.kind] = ActiveRuleSet(row.kind, row.version, row.document, row.team_id)
    return {k: found.get(k) or ActiveRuleSet(k, 0, DEFAULT_DOCUMENTS[k]) for k in wanted}


def scope(session: Session, kind: str, team_id: int | None) -> Governing:
    """The set of `kind` in force for one scope and whom it governs; a team's customers are its
    scope even while it follows the company's set."""
    others = () if team_id is not None else _teams_with_own(session, kind)
    return Governing(active(session, kind, team_id), team_id, others)


def governing(session: Session, kind: str) -> list[Governing]:
    """Every set of `kind` in force with whom it governs: each team's own, then the company's
    (or the default pack) for everyone else. Together they cover each customer exactly once."""
    sets = {
        row.team_id: ActiveRuleSet(kind, row.version, row.document, row.team_id)
        for row in session.execute(
            select(RuleSetVersion.version, RuleSetVersion.document, RuleSetVersion.team_id).where(
                RuleSetVersion.kind == kind, RuleSetVersion.status == RuleSetStatus.ACTIVE
            )
        )
    }
    teams = tuple(sorted(team for team in sets if team is not None))
    company = sets.get(None) or ActiveRuleSet(kind, 0, DEFAULT_DOCUMENTS[kind])
    return [*(Governing(sets[team], team) for team in teams), Governing(company, None, teams)]


def _teams_with_own(session: Session, kind: str) -> tuple[int, ...]:
    return tuple(
        session.scalars(
            select(RuleSetVersion.team_id)
            .where(
                RuleSetVersion.kind == kind,
                RuleSetVersion.status == RuleSetStatus.ACTIVE,
                RuleSetVersion.team_id.is_not(None),
            )
            .order_by(RuleSetVersion.team_id)
        )
    )
