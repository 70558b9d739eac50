"""What a trigger or timer may do: the action registry, with each action's parameters.

An action is `{"action": "notify", "to": "owner", "cc": "manager", "text": "…{customer}…"}`.
Parameters are checked when a rule set is validated, so running an action never meets a
malformed one; it may still find nothing to do (no owner, a stage move the table forbids).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm import audit, customers, notifications, placeholders, pool, similar, tasks
from crm.rules.conditions import Problem
from crm.rulesets.policy import AutoAssign
from crm.vocab import ALLOWED_STAGE_MOVES, Grade, Stage
from models import Customer, CustomerTag, User
from models.users import Role

log = logging.getLogger(__name__)

PLACEHOLDERS = {
    "customer": "客户名称",
    "company": "客户公司",
    "owner": "负责人",
    "stage": "阶段",
    "grade": "等级",
    "days": "距上次跟进天数",
    "rule": "规则名称",
}
MAX_TEMPLATE = 500
MAX_HOURS = 24 * 365


@dataclass
class Run:
    """One rule acting on one customer: what actions need to know and what they leave behind."""

    session: Session
    customer: Customer
    now: datetime
    rule: str
    origin: str  # tasks and the audit trail say which rule did it
    dedupe_key: str | None = None  # timers: the firing, so a message is queued once
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # raised by actions

    @property
    def cause(self) -> str:
        return f"规则「{self.rule}」"

    def render(self, template: str) -> str:
        customer = self.customer
        owner = self.session.get(User, customer.owner_id) if customer.owner_id else None
        moment = customer.last_follow_up_at or customer.created_at
        values = {
            "customer": customer.name,
            "company": customer.company or "",
            "owner": owner.name if owner else "公海",
            "stage": customer.stage,
            "grade": customer.grade or "未分级",
            "days": str(max((self.now - moment).days, 0)),
            "rule": self.rule,
        }
        return template.format_map(values)


def owner_of(session: Session, customer: Customer) -> list[User]:
    owner = session.get(User, customer.owner_id) if customer.owner_id else None
    return [owner] if owner is not None and owner.is_active else []


def managers_of(session: Session, customer: Customer) -> list[User]:
    """The owner's manager; without one (or for a pool customer), the team's managers."""
    owner = session.get(User, customer.owner_id) if customer.owner_id else None
    if owner is not None and owner.manager_id is not None:
        manager = session.get(User, owner.manager_id)
        if manager is not None and manager.is_active:
            return [manager]
    if customer.team_id is None:
        return []
    return list(
        session.scalars(
            select(User)
            .where(User.team_id == customer.team_id, User.role == Role.MANAGER, User.is_active)
            .order_by(User.id)
        )
    )


def _people(run: Run, who: str, user_id: int | None) -> list[User]:
    if who == "owner":
        return owner_of(run.session, run.customer)
    if who == "manager":
        return managers_of(run.session, run.customer)
    user = run.session.get(User, user_id) if user_id else None
    return [user] if user is not None and user.is_active else []


# --- the actions ------------------------------------------------------------------------------


def _set_grade(run: Run, params: Mapping[str, Any]) -> None:
    before = run.customer.grade
    if before == params["grade"]:
        return
    run.customer.grade = params["grade"]
    run.customer.updated_at = run.now
    audit.record(
        run.session,
        actor=None,
        entity="customer",
        entity_id=run.customer.id,
        action="grade",
        before={"grade": before},
        after={"grade": params["grade"]},
        now=run.now,
        reason=run.cause,
    )


def _set_stage(run: Run, params: Mapping[str, Any]) -> None:
    current, target = Stage(run.customer.stage), Stage(params["stage"])
    if target == current or target not in ALLOWED_STAGE_MOVES[current]:
        log.info("rule %s: no stage move %s -> %s", run.rule, current, target)
        return
    customers.change_stage(
        run.session,
        actor=None,
        customer=run.customer,
        to_stage=target,
        now=run.now,
        cause=run.cause,
    )
    run.events.append(("stage_changed", {"previous_stage": current.value}))


def _add_tag(run: Run, params: Mapping[str, Any]) -> None:
    key = (run.customer.id, params["tag"])
    if run.session.get(CustomerTag, key) is None:
        run.session.add(CustomerTag(customer_id=key[0], tag=key[1]))
        _audit_tag(run, "tag_added", params["tag"])


def _remove_tag(run: Run, params: Mapping[str, Any]) -> None:
    tag = run.session.get(CustomerTag, (run.customer.id, params["tag"]))
    if tag is not None:
        run.session.delete(tag)
        _audit_tag(run, "tag_removed", params["tag"])


def _audit_tag(run: Run, action: str, tag: str) -> None:
    run.customer.updated_at = run.now
    similar.index_profile(run.session, customer=run.customer, now=run.now)
    audit.record(
        run.session,
        actor=None,
        entity="customer",
        entity_id=run.customer.id,
        action=action,
        before={},
        after={"tag": tag},
        now=run.now,
        reason=run.cause,
    )


def _create_task(run: Run, params: Mapping[str, Any]) -> None:
    assignees = _people(run, params["for"], params.get("user_id"))
    if not assignees:
        log.info("rule %s: nobody to give a task about customer %s", run.rule, run.customer.id)
        return
    cc = _people(run, params["cc"], None) if params.get("cc") else []
    cc = [person for person in cc if person.id != assignees[0].id]
    tasks.create_task(
        run.session,
        assignee_id=assignees[0].id,
        title=run.render(params["title"])[:255],
        detail=run.render(params["detail"]) if params.get("detail") else None,
        due_at=run.now + timedelta(hours=params.get("due_in_hours", 24)),
        cc_id=cc[0].id if cc else None,
        customer_id=run.customer.id,
        origin=run.origin[:64],
        now=run.now,
    )


def _notify(run: Run, params: Mapping[str, Any]) -> None:
    title = run.render(params.get("title") or "客户提醒：{customer}")
    text = run.render(params["text"])
    recipients = _people(run, params["to"], params.get("user_id"))
    copies = _people(run, params["cc"], None) if params.get("cc") else []
    copies = [person for person in copies if person not in recipients]
    for people, prefix, suffix in ((recipients, "", ""), (copies, "【抄送】", ":cc")):
        if people:
            notifications.notify(
                run.session,
                recipients=people,
                title=f"{prefix}{title}",
                text=text,
                now=run.now,
                customer_id=run.customer.id,
                dedupe_key=f"{run.dedupe_key}{suffix}" if run.dedupe_key else None,
            )


def _release(run: Run, params: Mapping[str, Any]) -> None:
    pool.release(run.session, customer=run.customer, reason=params["reason"], now=run.now)


def _reassign(run: Run, params: Mapping[str, Any]) -> None:
    strategy = AutoAssign(params["strategy"]) if params.get("strategy") else None
    excluded = {run.customer.owner_id} if run.customer.owner_id else set()
    pool.auto_assign(
        run.session,
        customer=run.customer,
        now=run.now,
        strategy=strategy,
        exclude_user_ids=excluded,
    )


# --- parameters and the registry --------------------------------------------------------------


def _choice(values: Collection[str], label: str) -> Callable[[Any, Collection[int]], str | None]:
    def check(value: Any, _users: Collection[int]) -> str | None:
        return None if value in values else f"{label}只能是：{'、'.join(values)}"

    return check


def _text(limit: int) -> Callable[[Any, Collection[int]], str | None]:
    def check(value: Any, _users: Collection[int]) -> str | None:
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            return f"应为 1 到 {limit} 个字符的文字"
        return None

    return check


def _template(value: Any, users: Collection[int]) -> str | None:
    return _text(MAX_TEMPLATE)(value, users) or placeholders.problem(value, PLACEHOLDERS)


def _hours(value: Any, _users: Collection[int]) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "应为小时数"
    return None if 0 <= value <= MAX_HOURS else f"应在 0 到 {MAX_HOURS} 小时之间"


def _user(value: Any, users: Collection[int]) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value not in users:
        return f"成员「{value}」不存在或已停用"
    return None


Check = Callable[[Any, Collection[int]], str | None]
WHO = _choice(("owner", "manager", "user"), "对象")
CC = _choice(("owner", "manager"), "抄送对象")


@dataclass(frozen=True)
class Action:
    label: str
    run: Callable[[Run, Mapping[str, Any]], None]
    required: Mapping[str, Check]
    optional: Mapping[str, Check] = field(default_factory=dict)


ACTIONS: dict[str, Action] = {
    "set_grade": Action("设置等级", _set_grade, {"grade": _choice(tuple(Grade), "等级")}),
    "set_stage": Action("变更阶段", _set_stage, {"stage": _choice(tuple(Stage), "阶段")}),
    "add_tag": Action("添加标签", _add_tag, {"tag": _text(32)}),
    "remove_tag": Action("移除标签", _remove_tag, {"tag": _text(32)}),
    "create_task": Action(
        "创建待办",
        _create_task,
        {"for": WHO, "title": _template},
        {"user_id": _user, "cc": CC, "detail": _template, "due_in_hours": _hours},
    ),
    "notify": Action(
        "企业微信通知",
        _notify,
        {"to": WHO, "text": _template},
        {"user_id": _user, "cc": CC, "title": _template},
    ),
    "release_to_pool": Action("释放到公海", _release, {"reason": _text(255)}),
    "reassign": Action(
        "重新分配给同组其他销售",
        _reassign,
        {},
        {"strategy": _choice(tuple(AutoAssign), "分配方式")},
    ),
}


def check(
    actions: Any, *, path: str, where: str, active_user_ids: Collection[int]
) -> list[Problem]:
    """Everything wrong with a rule's action list, each problem naming its path."""
    if not isinstance(actions, list) or not actions or len(actions) > 10:
        return [Problem(path, f"{where}：动作（do）应为 1 到 10 项的列表")]
    problems = []
    for index, params in enumerate(actions):
        at = f"{path}[{index}]"
        if not isinstance(params, dict):
            problems.append(Problem(at, f"{where}：第{index + 1}个动作应为对象"))
            continue
        action = ACTIONS.get(params.get("action"))  # type: ignore[arg-type]
        if action is None:
            known = "、".join(f"{k}（{a.label}）" for k, a in ACTIONS.items())
            problems.append(
                Problem(
                    f"{at}.action",
                    f"{where}：没有「{params.get('action')}」这个动作，可用：{known}",
                )
            )
            continue
        label = f"{where}：动作「{action.label}」"
        for name in sorted(set(params) - {"action", *action.required, *action.optional}, key=str):
            problems.append(Problem(f"{at}.{name}", f"{label}没有参数「{name}」"))
        for name, checker in (*action.required.items(), *action.optional.items()):
            if name not in params:
                if name in action.required:
                    problems.append(Problem(f"{at}.{name}", f"{label}缺少参数「{name}」"))
                continue
            message = checker(params[name], active_user_ids)
            if message:
                problems.append(Problem(f"{at}.{name}", f"{label}的参数「{name}」{message}"))
        if params.get("for", params.get("to")) == "user" and "user_id" not in params:
            problems.append(Problem(f"{at}.user_id", f"{label}指定成员时需要 user_id"))
    return problems


def perform(run: Run, actions: Sequence[Mapping[str, Any]]) -> None:
    """Run a checked action list for one customer, in order."""
    for params in actions:
        ACTIONS[params["action"]].run(run, params)
