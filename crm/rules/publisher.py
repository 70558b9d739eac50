"""Managers edit rule sets here: drafts, check, preview, publish, history and rollback.

A publish gives a draft the next version number and, for grading, re-grades every customer in the
same transaction, so the new version and its grades land together or not at all. A rollback
publishes a copy of an earlier version: history only grows, and the rollback is in it. What is
in force is read from `crm.rulesets.store`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm import audit
from crm.actors import Actor, customer_scope
from crm.errors import Conflict, Forbidden, Invalid, NotFound
from crm.rules import actions, conditions, documents, grading, previews, timers
from crm.rules.conditions import Problem
from crm.rules.documents import KIND_LABELS, KINDS
from crm.rules.facts import registry
from crm.rulesets.defaults import DEFAULT_DOCUMENTS
from models import RuleSetVersion
from models.users import Role

MAX_DOCUMENT_CHARS = 100_000
REPLAY_DAYS = 30


@dataclass
class Published:
    row: RuleSetVersion
    regraded: grading.Regrade | None = None  # for a grading publish


@dataclass
class Preview:
    kind: str
    problems: list[Problem]
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


def overview(session: Session, *, actor: Actor) -> list[dict[str, Any]]:
    """Per kind: the version in force and the open drafts."""
    _require_manager(actor)
    drafts = list(
        session.scalars(
            select(RuleSetVersion)
            .where(RuleSetVersion.status == "draft", _own_drafts(actor))
            .order_by(RuleSetVersion.id)
        )
    )
    result = []
    for kind in KINDS:
        current = _active_row(session, kind)
        result.append(
            {
                "kind": kind,
                "label": KIND_LABELS[kind],
                "active_version": current.version if current else 0,
                "published_at": current.published_at if current else None,
                "document": current.document if current else DEFAULT_DOCUMENTS[kind],
                "drafts": [d for d in drafts if d.kind == kind],
            }
        )
    return result


def create_draft(
    session: Session, *, actor: Actor, kind: str, document: Any, note: str | None, now: datetime
) -> RuleSetVersion:
    """Save a draft (it may still have problems; publishing refuses those)."""
    _require_manager(actor)
    _require_kind(kind)
    _require_object(document)
    draft = RuleSetVersion(
        kind=kind,
        status="draft",
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
            RuleSetVersion.id == draft_id, RuleSetVersion.status == "draft", _own_drafts(actor)
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


def history(session: Session, *, actor: Actor, kind: str) -> list[dict[str, Any]]:
    """Every published version of `kind`, newest first, ending with the default pack (v0)."""
    _require_manager(actor)
    _require_kind(kind)
    rows = session.scalars(
        select(RuleSetVersion)
        .where(RuleSetVersion.kind == kind, RuleSetVersion.status != "draft")
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
            "status": "active" if not versions or versions[0]["status"] != "active" else "default",
            "note": "出厂默认规则",
            "published_at": None,
            "published_by": None,
            "rolled_back_from": None,
            "document": DEFAULT_DOCUMENTS[kind],
        }
    )
    return versions


def publish(
    session: Session, *, actor: Actor, draft_id: int, reason: str, now: datetime
) -> Published:
    """Make a draft the active version; grading re-grades every customer in the same step."""
    draft = get_draft(session, actor=actor, draft_id=draft_id)
    return _activate(session, actor=actor, row=draft, reason=reason, now=now, action="publish")


def rollback(
    session: Session, *, actor: Actor, kind: str, version: int, reason: str, now: datetime
) -> Published:
    """Publish again what version `version` of `kind` said (0: the default pack)."""
    _require_manager(actor)
    _require_kind(kind)
    if version == 0:
        document = DEFAULT_DOCUMENTS[kind]
    else:
        earlier = session.scalar(
            select(RuleSetVersion).where(
                RuleSetVersion.kind == kind,
                RuleSetVersion.version == version,
                RuleSetVersion.status != "draft",
            )
        )
        if earlier is None:
            raise NotFound(f"{KIND_LABELS[kind]}第{version}版")
        document = earlier.document
    current = _active_row(session, kind)
    if (current.version if current else 0) == version:
        raise Conflict(f"第{version}版已经是当前生效的版本", code="already_active")
    row = RuleSetVersion(
        kind=kind,
        status="draft",
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
        first = found[0]
        more = f"（另有 {len(found) - 1} 处问题）" if len(found) > 1 else ""
        raise Invalid(f"{first.message}{more}", code="invalid_rule", field=first.path)
    # Lock the version in force so two publishers of one kind queue up; the unique
    # (kind, version) key catches the race when there is none yet.
    current = session.scalar(
        select(RuleSetVersion)
        .where(RuleSetVersion.kind == row.kind, RuleSetVersion.status == "active")
        .with_for_update()
    )
    latest = session.scalar(
        select(func.max(RuleSetVersion.version)).where(RuleSetVersion.kind == row.kind)
    )
    if current is not None:
        current.status = "superseded"
    row.version = (latest or 0) + 1
    row.status = "active"
    row.published_by = actor.user_id
    row.published_at = now
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict("其他人刚刚发布了新版本，请刷新后再试", code="publish_race") from None
    label = f"{KIND_LABELS[row.kind]}第{row.version}版"
    audit.record(
        session,
        actor=actor,
        entity="rule_set",
        entity_id=row.id,
        action=action,
        before={"kind": row.kind, "version": current.version if current else 0},
        after={"kind": row.kind, "version": row.version, "rolled_back_from": row.rolled_back_from},
        now=now,
        reason=reason,
    )
    published = Published(row=row)
    if row.kind == "grading":
        published.regraded = grading.regrade_all(
            session,
            grading=grading.Grading.of(session, row.document, row.version),
            now=now,
            actor=actor,
            reason=f"发布{label}：{reason}",
        )
    return published


def preview(session: Session, *, actor: Actor, kind: str, document: Any, now: datetime) -> Preview:
    """What a document would do to the customers in the actor's scope, changing nothing."""
    _require_manager(actor)
    _require_kind(kind)
    result = Preview(kind=kind, problems=problems(session, kind, document))
    if result.problems:
        return result
    scope = customer_scope(actor)
    if kind == "grading":
        regrade = grading.preview(
            session, grading=grading.Grading.of(session, document), now=now, scope=scope
        )
        result.scope_customers = regrade.total
        result.changed = regrade.changed
        result.transitions = _transitions(regrade.transitions)
        result.sample = regrade.sample
        result.note = "按新规则重新分级后等级会变化的客户"
    elif kind == "timers":
        counts, sample = timers.preview(session, document=document, now=now, actor=actor)
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
            scope=scope,
        )
        result.changed = sum(r["customers"] for r in result.rules)
        result.note = f"按客户当前资料重放最近{REPLAY_DAYS}天的跟进和阶段变更，规则会被触发的次数"
    else:
        result.rules = previews.pool(session, actor=actor, document=document, now=now)
        result.note = "按新规则，各销售当前持有的未成交客户数与上限"
    return result


def _transitions(counter: Counter[tuple[str | None, str | None]]) -> list[dict[str, Any]]:
    return [
        {"from": old, "to": new, "customers": count}
        for (old, new), count in sorted(counter.items(), key=lambda item: -item[1])
    ]


def _active_row(session: Session, kind: str) -> RuleSetVersion | None:
    return session.scalar(
        select(RuleSetVersion).where(RuleSetVersion.kind == kind, RuleSetVersion.status == "active")
    )


def _own_drafts(actor: Actor) -> ColumnElement[bool]:
    """Drafts belong to their author, and the boss may open every draft."""
    return true() if actor.role is Role.BOSS else RuleSetVersion.created_by == actor.user_id


def _require_manager(actor: Actor) -> None:
    if not actor.can_manage:
        raise Forbidden("只有主管或老板可以查看和修改规则")


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
