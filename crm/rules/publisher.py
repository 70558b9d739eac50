"""Managers edit rule sets here: drafts, check, preview, publish, history and rollback.

Rule sets follow the org chart: the boss writes the company's (or names a team), a manager their
own team's, which overrides the company's for that team's customers. Every call works in one
scope, taken from the actor (`_scope`), and a preview and a publish of one scope cover exactly
the same customers: those the scope's set governs (`store.scope`). A draft belongs to its author
(and the boss) and carries its scope.

A publish gives a draft the next version number of its kind and, for grading, re-grades the
customers it governs in the same transaction, so the new version and its grades land together or
not at all. A rollback publishes a copy of an earlier version of the same scope: history only
grows, and the rollback is in it. A team's version 0 is "the company's set": rolling a team back
to it retires the team's own set. What is in force is read from `crm.rulesets.store`.

The keyword dictionary (kind "keywords") is versioned, scoped and audited like the rules, but a
publish changes no customer: it applies to chat archived from then on, and follow-ups already
captured stay as they were. Its preview therefore reports no customers changed and lists the
words each category (and the negation and risk lists) adds or removes against the dictionary in
force; `try_keywords` (POST /capture/preview) shows what a dictionary makes of sample messages.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm import audit, keywords
from crm.actors import Actor
from crm.errors import Conflict, Forbidden, Invalid, NotFound
from crm.rules import actions, conditions, documents, grading, previews, timers
from crm.rules.conditions import Problem
from crm.rules.documents import KIND_LABELS, KINDS
from crm.rules.facts import registry
from crm.rulesets import store
from crm.rulesets.defaults import DEFAULT_DOCUMENTS
from models import Customer, RuleSetVersion, Team, User
from models.rules import RuleSetStatus
from models.users import Role

MAX_DOCUMENT_CHARS = 100_000
REPLAY_DAYS = 30


@dataclass
class Published:
    """What a publish or a rollback put in force for one scope."""

    kind: str
    team_id: int | None
    version: int  # 0: the default pack, or for a team the company's set again
    published_at: datetime
    rolled_back_from: int | None = None
    regraded: grading.Regrade | None = None  # for a grading publish


@dataclass
class Preview:
    kind: str
    problems: list[Problem]
    team_id: int | None = None
    scope_customers: int = 0
    changed: int = 0
    transitions: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    sample: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


def problems(session: Session, kind: str, document: Any) -> list[Problem]:
    """Everything wrong with a document; [] means it may be published."""
    problem = _size_problem(document)
    if problem:
        return [problem]
    return documents.check(session, kind, document, facts=registry(session))


def check(session: Session, *, actor: Actor, kind: str, document: Any) -> list[Problem]:
    """What is wrong with a document a manager is writing ([] when it may be published)."""
    _require_manager(actor)
    _require_kind(kind)
    return problems(session, kind, document)


def vocabulary(session: Session, *, actor: Actor) -> dict[str, Any]:
    """What a rule may name: facts with their operators, actions, placeholders, events."""
    _require_manager(actor)
    return {
        "facts": [
            {
                "name": fact.name,
                "label": fact.label,
                "kind": fact.kind.value,
                "ops": sorted(conditions.OPS_BY_KIND[fact.kind]),
                "choices": list(fact.choices),
                "context": fact.context.value,
            }
            for fact in registry(session).values()
        ],
        "operators": conditions.OP_LABELS,
        "actions": [
            {
                "name": name,
                "label": action.label,
                "required": sorted(action.required),
                "optional": sorted(action.optional),
            }
            for name, action in actions.ACTIONS.items()
        ],
        "placeholders": actions.PLACEHOLDERS,
        "events": documents.EVENT_LABELS,
        "clocks": documents.CLOCKS,
    }


def overview(session: Session, *, actor: Actor, team_id: int | None = None) -> list[dict[str, Any]]:
    """Per kind, for the actor's scope: the version in force (a team's own, or the company's it
    inherits) and the actor's open drafts of that scope."""
    scope = _scope(session, actor, team_id)
    drafts = list(
        session.scalars(
            select(RuleSetVersion)
            .where(
                RuleSetVersion.status == RuleSetStatus.DRAFT,
                _own_drafts(actor),
                store.in_scope(scope),
            )
            .order_by(RuleSetVersion.id)
        )
    )
    result = []
    for kind in KINDS:
        own = _active_row(session, kind, scope)
        current = own or (_active_row(session, kind, None) if scope is not None else None)
        result.append(
            {
                "kind": kind,
                "label": KIND_LABELS[kind],
                "team_id": scope,
                "inherited": scope is not None and own is None,
                "active_version": current.version if current else 0,
                "published_at": current.published_at if current else None,
                "document": current.document if current else DEFAULT_DOCUMENTS[kind],
                "drafts": [d for d in drafts if d.kind == kind],
            }
        )
    return result


def create_draft(
    session: Session,
    *,
    actor: Actor,
    kind: str,
    document: Any,
    note: str | None,
    now: datetime,
    team_id: int | None = None,
) -> RuleSetVersion:
    """Save a draft for the actor's scope (it may still have problems; publishing refuses
    those)."""
    scope = _scope(session, actor, team_id)
    _require_kind(kind)
    _require_object(document)
    draft = RuleSetVersion(
        kind=kind,
        team_id=scope,
        status=RuleSetStatus.DRAFT,
        document=document,
        note=note,
        created_by=actor.user_id,
        created_at=now,
    )
    session.add(draft)
    session.flush()
    return draft


def get_draft(session: Session, *, actor: Actor, draft_id: int) -> RuleSetVersion:
    """One draft of the actor's own (the boss may open anyone's); others' answer like missing."""
    _require_manager(actor)
    draft = session.scalar(
        select(RuleSetVersion).where(
            RuleSetVersion.id == draft_id,
            RuleSetVersion.status == RuleSetStatus.DRAFT,
            _own_drafts(actor),
        )
    )
    if draft is None:
        raise NotFound("规则草稿")
    return draft


def update_draft(
    session: Session, *, actor: Actor, draft_id: int, document: Any, note: str | None
) -> RuleSetVersion:
    draft = get_draft(session, actor=actor, draft_id=draft_id)
    _require_object(document)
    draft.document = document
    if note is not None:
        draft.note = note
    session.flush()
    return draft


def delete_draft(session: Session, *, actor: Actor, draft_id: int) -> None:
    session.delete(get_draft(session, actor=actor, draft_id=draft_id))
    session.flush()


def history(
    session: Session, *, actor: Actor, kind: str, team_id: int | None = None
) -> dict[str, Any]:
    """Every published version of `kind` in the actor's scope, newest first, ending with v0:
    the default pack for the company, the company's set for a team."""
    scope = _scope(session, actor, team_id)
    _require_kind(kind)
    rows = session.scalars(
        select(RuleSetVersion)
        .where(
            RuleSetVersion.kind == kind,
            RuleSetVersion.status != RuleSetStatus.DRAFT,
            store.in_scope(scope),
        )
        .order_by(RuleSetVersion.version.desc())
    )
    versions: list[dict[str, Any]] = [
        {
            "version": row.version,
            "status": row.status,
            "note": row.note,
            "published_at": row.published_at,
            "published_by": row.published_by,
            "rolled_back_from": row.rolled_back_from,
            "document": row.document,
        }
        for row in rows
    ]
    versions.append(
        {
            "version": 0,
            "status": (
                RuleSetStatus.ACTIVE
                if not versions or versions[0]["status"] != RuleSetStatus.ACTIVE
                else "default"
            ),
            "note": "出厂默认规则" if scope is None else "沿用公司规则",
            "published_at": None,
            "published_by": None,
            "rolled_back_from": None,
            "document": DEFAULT_DOCUMENTS[kind]
            if scope is None
            else store.active(session, kind).document,
        }
    )
    return {"kind": kind, "team_id": scope, "items": versions}


def publish(
    session: Session, *, actor: Actor, draft_id: int, reason: str, now: datetime
) -> Published:
    """Make a draft the active version of its scope; grading re-grades the customers it governs
    in the same step."""
    draft = get_draft(session, actor=actor, draft_id=draft_id)
    return _activate(session, actor=actor, row=draft, reason=reason, now=now, action="publish")


def rollback(
    session: Session,
    *,
    actor: Actor,
    kind: str,
    version: int,
    reason: str,
    now: datetime,
    team_id: int | None = None,
) -> Published:
    """Publish again what version `version` of `kind` in the actor's scope said (0: the default
    pack for the company; for a team, the company's set again)."""
    scope = _scope(session, actor, team_id)
    _require_kind(kind)
    current = _active_row(session, kind, scope)
    if (current.version if current else 0) == version:
        raise Conflict(f"第{version}版已经是当前生效的版本", code="already_active")
    if version == 0 and scope is not None:
        return _follow_company(
            session, actor=actor, kind=kind, team_id=scope, reason=reason, now=now
        )
    if version == 0:
        document = DEFAULT_DOCUMENTS[kind]
    else:
        earlier = session.scalar(
            select(RuleSetVersion).where(
                RuleSetVersion.kind == kind,
                RuleSetVersion.version == version,
                RuleSetVersion.status != RuleSetStatus.DRAFT,
                store.in_scope(scope),
            )
        )
        if earlier is None:
            raise NotFound(f"{KIND_LABELS[kind]}第{version}版")
        document = earlier.document
    row = RuleSetVersion(
        kind=kind,
        team_id=scope,
        status=RuleSetStatus.DRAFT,
        document=document,
        note=f"回滚到第{version}版",
        rolled_back_from=version,
        created_by=actor.user_id,
        created_at=now,
    )
    session.add(row)
    return _activate(session, actor=actor, row=row, reason=reason, now=now, action="rollback")


def _activate(
    session: Session,
    *,
    actor: Actor,
    row: RuleSetVersion,
    reason: str,
    now: datetime,
    action: str,
) -> Published:
    found = problems(session, row.kind, row.document)
    if found:
        raise _refusal(found)
    # Lock the version in force in the scope so two publishers of one scope queue up; the
    # unique (kind, version) key catches the race when there is none yet, and across scopes.
    current = _active_row(session, row.kind, row.team_id, for_update=True)
    latest = session.scalar(
        select(func.max(RuleSetVersion.version)).where(RuleSetVersion.kind == row.kind)
    )
    if current is not None:
        current.status = RuleSetStatus.SUPERSEDED
    row.version = (latest or 0) + 1
    row.status = RuleSetStatus.ACTIVE
    row.published_by = actor.user_id
    row.published_at = now
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict("其他人刚刚发布了新版本，请刷新后再试", code="publish_race") from None
    _audit(session, actor, row, action, before=current, now=now, reason=reason)
    published = Published(
        kind=row.kind,
        team_id=row.team_id,
        version=row.version,
        published_at=now,
        rolled_back_from=row.rolled_back_from,
    )
    label = f"{KIND_LABELS[row.kind]}第{row.version}版"
    published.regraded = _regrade(
        session, row.kind, row.team_id, actor, f"发布{label}：{reason}", now
    )
    return published


def _follow_company(
    session: Session, *, actor: Actor, kind: str, team_id: int, reason: str, now: datetime
) -> Published:
    """A team's rollback to version 0: its own set retires and the company's governs it again."""
    current = _active_row(session, kind, team_id, for_update=True)
    if current is None:
        raise Conflict("本团队已经在沿用公司的规则", code="already_active")
    current.status = RuleSetStatus.SUPERSEDED
    session.flush()
    _audit(session, actor, current, "rollback", before=current, now=now, reason=reason, version=0)
    regraded = _regrade(
        session, kind, team_id, actor, f"{KIND_LABELS[kind]}改回沿用公司规则：{reason}", now
    )
    return Published(
        kind=kind,
        team_id=team_id,
        version=0,
        published_at=now,
        rolled_back_from=0,
        regraded=regraded,
    )


def _regrade(
    session: Session,
    kind: str,
    team_id: int | None,
    actor: Actor,
    reason: str,
    now: datetime,
) -> grading.Regrade | None:
    """After grading changed in a scope: re-grade the customers its set now governs."""
    if kind != "grading":
        return None
    governing = store.scope(session, kind, team_id)
    in_force = governing.rule_set
    return grading.regrade_all(
        session,
        grading=grading.Grading.of(session, in_force.document, in_force.version),
        now=now,
        actor=actor,
        reason=reason,
        scope=governing.covers(Customer.team_id),
    )


def _audit(
    session: Session,
    actor: Actor,
    row: RuleSetVersion,
    action: str,
    *,
    before: RuleSetVersion | None,
    now: datetime,
    reason: str,
    version: int | None = None,
) -> None:
    """One audit line for what a scope's version in force became (`version`: row's own)."""
    after = row.version if version is None else version
    audit.record(
        session,
        actor=actor,
        entity="rule_set",
        entity_id=row.id,
        action=action,
        before={
            "kind": row.kind,
            "team_id": row.team_id,
            "version": before.version if before else 0,
        },
        after={
            "kind": row.kind,
            "team_id": row.team_id,
            "version": after,
            "rolled_back_from": row.rolled_back_from if version is None else 0,
        },
        now=now,
        reason=reason,
    )


def preview(
    session: Session,
    *,
    actor: Actor,
    kind: str,
    document: Any,
    now: datetime,
    team_id: int | None = None,
) -> Preview:
    """What a document would do in the actor's scope if published there, changing nothing: the
    same customers a publish would touch."""
    scope = _scope(session, actor, team_id)
    _require_kind(kind)
    result = Preview(kind=kind, problems=problems(session, kind, document), team_id=scope)
    if result.problems:
        return result
    governing = store.scope(session, kind, scope)
    customers = governing.covers(Customer.team_id)
    if kind == "grading":
        regrade = grading.preview(
            session, grading=grading.Grading.of(session, document), now=now, scope=customers
        )
        result.scope_customers = regrade.total
        result.changed = regrade.changed
        result.transitions = _transitions(regrade.transitions)
        result.sample = regrade.sample
        result.note = "按新规则重新分级后等级会变化的客户"
    elif kind == "timers":
        counts, sample = timers.preview(session, document=document, now=now, scope=customers)
        result.changed = sum(counts.values())
        result.rules = [{"rule": key, "customers": n} for key, n in counts.items()]
        result.sample = sample
        result.note = "下一次定时检查时会被提醒、释放或转交的客户"
    elif kind == "triggers":
        result.rules, result.sample = previews.triggers(
            session,
            document=document,
            now=now,
            since=now - timedelta(days=REPLAY_DAYS),
            scope=customers,
        )
        result.changed = sum(r["customers"] for r in result.rules)
        result.note = f"按客户当前资料重放最近{REPLAY_DAYS}天的跟进和阶段变更，规则会被触发的次数"
    elif kind == "pool":
        result.rules = previews.pool(
            session, document=document, people=governing.covers(User.team_id)
        )
        result.note = "按新规则，各销售当前持有的未成交客户数与上限"
    else:
        result.rules = previews.keywords(document, governing.rule_set.document)
        result.note = (
            "词库只用于之后归档的聊天记录，不改动任何客户，已生成的跟进也不重算；"
            "下面是与当前生效词库相比增删的词。用 POST /capture/preview 试试它对聊天内容的效果"
        )
    return result


def try_keywords(
    session: Session,
    *,
    actor: Actor,
    texts: list[str],
    document: Any = None,
    team_id: int | None = None,
) -> list[keywords.Hits]:
    """What a keyword dictionary captures in each text: `document` once checked, else the one in
    force for the actor's scope."""
    scope = _scope(session, actor, team_id)
    if document is None:
        return keywords.dictionary_for(session, scope).match_many(texts)
    found = problems(session, keywords.KIND, document)
    if found:
        raise _refusal(found, at="dictionary")
    return keywords.Dictionary.of(document).match_many(texts)


def _transitions(counter: Counter[tuple[str | None, str | None]]) -> list[dict[str, Any]]:
    return [
        {"from": old, "to": new, "customers": count}
        for (old, new), count in sorted(counter.items(), key=lambda item: -item[1])
    ]


def _active_row(
    session: Session, kind: str, team_id: int | None, *, for_update: bool = False
) -> RuleSetVersion | None:
    query = select(RuleSetVersion).where(
        RuleSetVersion.kind == kind,
        RuleSetVersion.status == RuleSetStatus.ACTIVE,
        store.in_scope(team_id),
    )
    return session.scalar(query.with_for_update() if for_update else query)


def _scope(session: Session, actor: Actor, team_id: int | None) -> int | None:
    """The scope an actor works in: a manager's own team; the boss's choice, the company's
    (None) unless they name a team."""
    _require_manager(actor)
    if actor.role is Role.BOSS:
        if team_id is not None and session.get(Team, team_id) is None:
            raise NotFound("团队")
        return team_id
    if actor.team_id is None or team_id not in (None, actor.team_id):
        raise Forbidden("主管只能查看和修改本团队的规则")
    return actor.team_id


def _own_drafts(actor: Actor) -> ColumnElement[bool]:
    """Drafts belong to their author (within their team's scope); the boss may open every one."""
    if actor.role is Role.BOSS:
        return true()
    return and_(RuleSetVersion.created_by == actor.user_id, store.in_scope(actor.team_id))


def _require_manager(actor: Actor) -> None:
    if not actor.can_manage:
        raise Forbidden("只有主管或老板可以查看和修改规则")


def _refusal(found: list[Problem], *, at: str = "") -> Invalid:
    """The first problem of a document as an error, with the place it points at (`at`: where
    the document sits in the request) and how many more there are."""
    first = found[0]
    more = f"（另有 {len(found) - 1} 处问题）" if len(found) > 1 else ""
    path = first.path if first.path != "document" else ""
    field = ".".join(p for p in (at, path) if p) or first.path
    return Invalid(f"{first.message}{more}", code="invalid_rule", field=field)


def _require_kind(kind: str) -> None:
    if kind not in KINDS:
        raise Invalid(f"规则类型只能是：{'、'.join(KINDS)}", field="kind")


def _require_object(document: Any) -> None:
    if not isinstance(document, dict):
        raise Invalid("规则内容应为 JSON 对象", field="document")
    problem = _size_problem(document)
    if problem:
        raise Invalid(problem.message, field="document")


def _size_problem(document: Any) -> Problem | None:
    try:
        # NaN and Infinity parse from JSON in Python, but PostgreSQL's JSONB refuses them.
        size = len(json.dumps(document, allow_nan=False, ensure_ascii=False))
    except (TypeError, ValueError):
        return Problem("document", "规则内容只能包含文字、有限的数字、true/false、列表和对象")
    if size > MAX_DOCUMENT_CHARS:
        return Problem("document", f"规则内容过长（最多 {MAX_DOCUMENT_CHARS} 字符）")
    return None
