"""/rule-sets: managers write, check, preview, publish and roll back the rules themselves.

A manager works on their team's rule sets, the boss on the company's or, naming `team_id`, on a
team's (crm/rules/publisher.py).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from crm.rules import publisher
from miniapp_api import api
from miniapp_api.context import actor, now, session
from miniapp_api.routing import operation
from miniapp_api.schemas import (
    CheckOut,
    DraftIn,
    DraftOut,
    DraftPatch,
    HistoryQuery,
    PreviewOut,
    PublishIn,
    PublishOut,
    RollbackIn,
    RuleCheckIn,
    RulePreviewIn,
    RuleScopeQuery,
    RuleSetList,
    VersionList,
    VocabularyOut,
)
from models import RuleSetVersion


def _draft(draft: RuleSetVersion) -> dict[str, Any]:
    found = publisher.problems(session(), draft.kind, draft.document)
    return {**_columns(draft), "problems": [asdict(p) for p in found]}


def _columns(row: RuleSetVersion) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in RuleSetVersion.__mapper__.columns}


def _preview(preview: publisher.Preview) -> dict[str, Any]:
    return {**asdict(preview), "valid": not preview.problems}


@operation(
    api,
    "GET",
    "/rule-sets",
    summary="各类规则的当前版本与草稿（主管：本团队；老板：公司或指定团队）",
    tag="rules",
    query=RuleScopeQuery,
    response=RuleSetList,
)
def list_rule_sets(query: RuleScopeQuery) -> Any:
    return {"items": publisher.overview(session(), actor=actor(), team_id=query.team_id)}


@operation(
    api,
    "GET",
    "/rule-sets/vocabulary",
    summary="规则可用的条件字段、运算符、动作和占位符",
    tag="rules",
    response=VocabularyOut,
)
def rule_vocabulary() -> Any:
    return publisher.vocabulary(session(), actor=actor())


@operation(
    api,
    "POST",
    "/rule-sets/validate",
    summary="检查规则（指出出错的位置）",
    tag="rules",
    body=RuleCheckIn,
    response=CheckOut,
)
def validate_rules(body: RuleCheckIn) -> Any:
    found = publisher.check(session(), actor=actor(), kind=body.kind, document=body.document)
    return {"valid": not found, "problems": [asdict(p) for p in found]}


@operation(
    api,
    "POST",
    "/rule-sets/preview",
    summary="预览规则效果（与发布覆盖同样的客户，不做任何修改）",
    tag="rules",
    body=RulePreviewIn,
    response=PreviewOut,
)
def preview_rules(body: RulePreviewIn) -> Any:
    return _preview(
        publisher.preview(
            session(),
            actor=actor(),
            kind=body.kind,
            document=body.document,
            now=now(),
            team_id=body.team_id,
        )
    )


@operation(
    api,
    "POST",
    "/rule-sets/drafts",
    summary="保存规则草稿",
    tag="rules",
    body=DraftIn,
    response=DraftOut,
    status=201,
)
def create_rule_draft(body: DraftIn) -> Any:
    draft = publisher.create_draft(
        session(),
        actor=actor(),
        kind=body.kind,
        document=body.document,
        note=body.note,
        now=now(),
        team_id=body.team_id,
    )
    return _draft(draft)


@operation(
    api, "GET", "/rule-sets/drafts/{draft_id}", summary="规则草稿", tag="rules", response=DraftOut
)
def get_rule_draft(draft_id: int) -> Any:
    return _draft(publisher.get_draft(session(), actor=actor(), draft_id=draft_id))


@operation(
    api,
    "PUT",
    "/rule-sets/drafts/{draft_id}",
    summary="修改规则草稿",
    tag="rules",
    body=DraftPatch,
    response=DraftOut,
)
def update_rule_draft(draft_id: int, body: DraftPatch) -> Any:
    draft = publisher.update_draft(
        session(), actor=actor(), draft_id=draft_id, document=body.document, note=body.note
    )
    return _draft(draft)


@operation(
    api, "DELETE", "/rule-sets/drafts/{draft_id}", summary="删除规则草稿", tag="rules", status=204
)
def delete_rule_draft(draft_id: int) -> Any:
    publisher.delete_draft(session(), actor=actor(), draft_id=draft_id)


@operation(
    api,
    "POST",
    "/rule-sets/drafts/{draft_id}/preview",
    summary="预览草稿效果（不做任何修改）",
    tag="rules",
    response=PreviewOut,
)
def preview_rule_draft(draft_id: int) -> Any:
    draft = publisher.get_draft(session(), actor=actor(), draft_id=draft_id)
    return _preview(
        publisher.preview(
            session(),
            actor=actor(),
            kind=draft.kind,
            document=draft.document,
            now=now(),
            team_id=draft.team_id,
        )
    )


@operation(
    api,
    "POST",
    "/rule-sets/drafts/{draft_id}/publish",
    summary="发布草稿为新版本（只对草稿所属范围生效：团队草稿只改本团队客户，分级立即重算）",
    tag="rules",
    body=PublishIn,
    response=PublishOut,
)
def publish_rule_draft(draft_id: int, body: PublishIn) -> Any:
    return publisher.publish(
        session(), actor=actor(), draft_id=draft_id, reason=body.reason, now=now()
    )


@operation(
    api,
    "GET",
    "/rule-sets/history",
    summary="规则版本历史（主管：本团队；老板：公司或指定团队）",
    tag="rules",
    query=HistoryQuery,
    response=VersionList,
)
def rule_history(query: HistoryQuery) -> Any:
    return publisher.history(session(), actor=actor(), kind=query.kind, team_id=query.team_id)


@operation(
    api,
    "POST",
    "/rule-sets/rollback",
    summary="一键回滚到本范围的任一历史版本（公司：0 为出厂默认；团队：0 为沿用公司规则）",
    tag="rules",
    body=RollbackIn,
    response=PublishOut,
)
def rollback_rules(body: RollbackIn) -> Any:
    return publisher.rollback(
        session(),
        actor=actor(),
        kind=body.kind,
        version=body.version,
        reason=body.reason,
        now=now(),
        team_id=body.team_id,
    )
