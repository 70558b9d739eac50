"""Hashtag commands members type into the WeCom app (#今日#, #跟进# 张三 …).

Each command checks the sender's role, finds customers only inside the sender's scope, calls
the same crm services as the API and returns a short Chinese reply. Refusals come back as
replies too: nothing here raises to the caller except a real fault.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from crm import customers, followups, orders, pool, tasks
from crm.actors import Actor
from crm.assignment import Assignment, assign_customer
from crm.errors import DomainError
from crm.lookup import Reach, customers_named, customers_named_at_start, reps_named
from crm.storage import FileStore
from crm.vocab import ContactMethod, FollowUpSource
from models import Customer, Recording, User
from models.users import Role

# `#名称#` then arguments; the full-width ＃ of Chinese keyboards counts as #, and \s also
# matches the full-width space (U+3000).
_COMMAND = re.compile(r"^\s*[#＃]\s*([^#＃\s]+)\s*[#＃]\s*(.*)$", re.S)
MAX_LISTED = 8
MAX_CANDIDATES = 6
MANAGERS = (Role.MANAGER, Role.BOSS)


@dataclass(frozen=True)
class Context:
    """What a command needs besides its text."""

    session: Session
    actor: Actor
    now: datetime
    store: FileStore
    max_attachment_bytes: int
    # The transcribed voice message the command was read from (bot/voice.py): the follow-up
    # it logs keeps the audio.
    voice: Recording | None = None


@dataclass(frozen=True)
class Command:
    name: str
    usage: str  # the arguments, as the help shows them
    summary: str
    run: Callable[[Context, str], str]
    roles: tuple[Role, ...] = (Role.REP, Role.MANAGER, Role.BOSS)

    @property
    def example(self) -> str:
        return f"#{self.name}# {self.usage}".rstrip()


class Refusal(DomainError):
    """A command that cannot run as typed; the message is the reply."""

    code = "bot_refusal"


def run(ctx: Context, text: str) -> str:
    """The reply to one text message from a member."""
    match = _COMMAND.match(text)
    command = COMMANDS.get(match.group(1)) if match else None
    if match is None or command is None:
        return help_text(ctx.actor, unknown=match.group(1) if match else None)
    if ctx.actor.role not in command.roles:
        allowed = "、".join(ROLE_NAMES[r] for r in command.roles)
        return f"「#{command.name}#」只有{allowed}可以使用。发送 #帮助# 查看你可用的命令。"
    try:
        # A refusal part-way (a trigger, a cap) must not leave half the command behind.
        with ctx.session.begin_nested():
            return command.run(ctx, " ".join(match.group(2).split()))
    except DomainError as refusal:
        return refusal.message


ROLE_NAMES = {Role.REP: "销售", Role.MANAGER: "主管", Role.BOSS: "老板"}


def help_text(actor: Actor, *, unknown: str | None = None) -> str:
    lines = [f"没有「#{unknown}#」这个命令。"] if unknown else []
    lines.append("可用命令：")
    lines += [f"{c.example}　{c.summary}" for c in COMMANDS.values() if actor.role in c.roles]
    lines.append("客户可写名称、公司、电话或编号；名称重名时我会列出候选。")
    return "\n".join(lines)


# -- the commands ------------------------------------------------------------------------------


def _help(ctx: Context, _args: str) -> str:
    return help_text(ctx.actor)


def _today(ctx: Context, _args: str) -> str:
    items = tasks.today(ctx.session, actor=ctx.actor, now=ctx.now)
    if not items:
        return "今天没有待办，也没有到期的计划跟进。"
    lines = [f"今日待办 {len(items)} 项（逾期在前）："]
    for number, item in enumerate(items[:MAX_LISTED], start=1):
        late = f"【逾期{item.overdue_days}天】" if item.overdue_days else ""
        who = f"（{item.customer.name}）" if item.customer and item.kind == "task" else ""
        lines.append(f"{number}. {late}{item.title}{who}")
    if len(items) > MAX_LISTED:
        lines.append(f"……还有 {len(items) - MAX_LISTED} 项，请在小程序「我的今日任务」查看。")
    return "\n".join(lines)


def _find(ctx: Context, args: str) -> str:
    keyword = args.strip()
    if not keyword:
        raise _usage("客户")
    page = customers.list_customers(
        ctx.session,
        actor=ctx.actor,
        query=customers.CustomerQuery(q=keyword, page_size=MAX_LISTED),
    )
    if not page.items:
        return f"没有找到与「{keyword}」相关的客户。"
    lines = [f"找到 {page.total} 个客户："]
    lines += [f"{n}. {_describe(c)}" for n, c in enumerate(page.items, start=1)]
    if page.total > len(page.items):
        lines.append("结果较多，请换个更具体的关键词。")
    return "\n".join(lines)


def _follow_up(ctx: Context, args: str) -> str:
    spoken = ctx.voice is not None
    customer, content = _spoken_customer(ctx, args) if spoken else (None, "")
    if customer is None:
        name, content = _split(args, "跟进")
        customer = _one_customer(ctx, name, Reach.BOOK, "跟进")
    # Said in a voice message unless the member named the method ("张三 电话 …").
    method, content = _named_method(
        content, ContactMethod.VOICE if spoken else ContactMethod.WECOM_CHAT, run_on=spoken
    )
    stage_before = customer.stage
    followups.log_follow_up(
        ctx.session,
        actor=ctx.actor,
        customer_id=customer.id,
        method=method,
        summary=content,
        now=ctx.now,
        store=ctx.store,
        max_attachment_bytes=ctx.max_attachment_bytes,
        source=FollowUpSource.VOICE if spoken else FollowUpSource.MANUAL,
        voice=ctx.voice,
    )
    reply = f"已记录对「{customer.name}」的跟进（{method.value}）。"
    if customer.stage != stage_before:
        reply += f"\n阶段已由{stage_before}变为{customer.stage}。"
    return reply


def _claim(ctx: Context, args: str) -> str:
    if not args:
        raise _usage("领取")
    customer = _one_customer(ctx, args, Reach.POOL, "领取")
    pool.claim(ctx.session, actor=ctx.actor, customer_id=customer.id, now=ctx.now)
    return f"已从公海领取「{customer.name}」，请尽快跟进。"


def _assign(ctx: Context, args: str) -> str:
    name, member_name = _split(args, "分配")
    customer = _one_customer(ctx, name, Reach.BOOK_AND_POOL, "分配")
    member = _one_rep(ctx, member_name)
    done = assign_customer(
        ctx.session,
        actor=ctx.actor,
        customer_id=customer.id,
        owner_id=member.id,
        now=ctx.now,
        reason=f"企业微信命令 #分配#（{ctx.actor.name}）",
    )
    if done is Assignment.ALREADY_OWNER:
        return f"「{customer.name}」已经由{member.name}负责。"
    return f"已把「{customer.name}」分配给{member.name}。"


def _expedite(ctx: Context, args: str) -> str:
    number, reason = _split(args, "加急")
    result = orders.expedite(
        ctx.session, actor=ctx.actor, number=number, reason=reason, now=ctx.now
    )
    skipped = "".join(f"「{name}」" for name in result.skipped)
    done = f"已跳过{skipped}" if skipped else "流程中没有可跳过的节点"
    if result.is_approved:
        return f"订单 {result.order.number} 已加急：{done}，订单已审批通过。"
    remaining = "".join(f"「{name}」" for name in result.remaining)
    told = f"已通知{'、'.join(result.notified)}" if result.notified else "无需通知他人"
    return f"订单 {result.order.number} 已加急：{done}；还需{remaining}，{told}。"


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command("今日", "", "今天要做的事（逾期在前）", _today),
        Command("跟进", "<客户> <内容>", "记一条跟进，可用“电话/拜访…”开头注明方式", _follow_up),
        Command("客户", "<关键词>", "按名称、公司或电话查客户", _find),
        Command("领取", "<客户>", "从公海领取客户", _claim, roles=(Role.REP,)),
        Command("分配", "<客户> <成员>", "把客户分配给本组销售", _assign, roles=MANAGERS),
        Command("加急", "<订单号> <原因>", "订单走紧急通道，跳过可跳过的审批", _expedite, MANAGERS),
        Command("帮助", "", "查看可用命令", _help),
    )
}


# -- finding things ----------------------------------------------------------------------------


def _usage(name: str) -> Refusal:
    command = COMMANDS[name]
    return Refusal(f"格式：{command.example}")


def _split(args: str, name: str) -> tuple[str, str]:
    """The first word and the rest, both required."""
    first, _, rest = args.partition(" ")
    if not first or not rest.strip():
        raise _usage(name)
    return first, rest.strip()


def _spoken_customer(ctx: Context, args: str) -> tuple[Customer | None, str]:
    """The customer a transcript begins with and what it says after the name; (None, "") when
    it begins with no customer's name (then it is read word by word, as typed)."""
    found = customers_named_at_start(
        ctx.session, actor=ctx.actor, text=args, reach=Reach.BOOK, limit=MAX_CANDIDATES + 1
    )
    if not found:
        if " " not in args.strip():
            raise _not_found(args.strip())  # no name, and no word to read as one
        return None, ""
    name = args.strip()[: len(found[0].name)]
    content = args.strip()[len(name) :].strip()
    if not content:
        raise _usage("跟进")
    return _only(found, name, "跟进"), content


def _named_method(
    content: str, default: ContactMethod, *, run_on: bool
) -> tuple[ContactMethod, str]:
    """The method the content starts with ("电话 已报价") and the rest; speech may run it into
    the rest ("电话已报价"), typing may not ("微信上说…" is no method)."""
    for method in ContactMethod:
        rest = content.removeprefix(method.value)
        if rest != content and (rest.startswith(" ") or run_on) and rest.strip():
            return method, rest.strip()
    return default, content


def _one_customer(ctx: Context, text: str, reach: Reach, name: str) -> Customer:
    """The one customer in reach that `text` names; several: the reply lists them with ids."""
    found = customers_named(
        ctx.session, actor=ctx.actor, text=text, reach=reach, limit=MAX_CANDIDATES + 1
    )
    return _only(found, text, name)


def _only(found: list[Customer], text: str, name: str) -> Customer:
    """The one customer found for `text` in the command `name`; none or several: a refusal."""
    if not found:
        raise _not_found(text)
    if len(found) > 1:
        lines = [f"「{text}」对应多个客户，请用编号指定："]
        lines += [f"{c.id}　{_describe(c)}" for c in found[:MAX_CANDIDATES]]
        if len(found) > MAX_CANDIDATES:
            lines.append("……还有更多，请写得更具体些。")
        lines.append(f"例如：#{name}# {found[0].id} …")
        raise Refusal("\n".join(lines))
    return found[0]


def _not_found(text: str) -> Refusal:
    # The same words whether it does not exist or is someone else's.
    return Refusal(f"没有找到客户「{text}」，或不在你的权限范围内。")


def _one_rep(ctx: Context, text: str) -> User:
    """An active rep the actor manages, by name or WeCom userid."""
    found = reps_named(ctx.session, actor=ctx.actor, text=text, limit=MAX_CANDIDATES + 1)
    if not found:
        raise Refusal(f"你管理的销售中没有「{text}」。")
    if len(found) > 1:
        names = "、".join(f"{u.name}（{u.wecom_userid}）" for u in found[:MAX_CANDIDATES])
        raise Refusal(f"有多位叫「{text}」的销售：{names}，请改用企业微信账号指定。")
    return found[0]


def _describe(customer: Customer) -> str:
    facts = [f for f in (customer.company, customer.region) if f]
    grade = f"·{customer.grade}级" if customer.grade else ""
    owner = customer.owner.name if customer.owner else "公海"
    extra = f"（{'，'.join(facts)}）" if facts else ""
    return f"{customer.name}{extra} {customer.stage}{grade} 负责人：{owner}"
