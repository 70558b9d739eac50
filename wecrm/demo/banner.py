"""The banner `wecrm demo` prints once everything is up: what a newcomer needs to try the demo, in
Chinese, with every link one that answers and commands ready to paste."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fake_wecom.console import CHAT_PATH
from synthetic.directory import ROOT_DEPARTMENT_ID
from wecrm.demo.voice import MEMO_FILENAME, VoiceFollowUp

DEMO_CODE_PREFIX = "demo-"  # each member's one-time sign-in code on the fake WeCom: demo-<userid>
RULE = "=" * 72


def banner(
    *,
    base_url: str,
    fake_page_url: str | None,
    members: list[dict[str, Any]],
    voice: VoiceFollowUp | None,
    log_dir: Path,
    mail_dir: Path | None,
) -> str:
    """The banner for a demo served at `base_url`, its members listed as WeCom lists them; the
    rep it signs in as is the one who logged the `voice` follow-up, when there is one."""
    boss = next(
        (
            m
            for m in members
            if m["department"] == [ROOT_DEPARTMENT_ID] and m["is_leader_in_dept"] == [1]
        ),
        members[0],
    )
    manager = next(
        (
            m
            for m in members
            if m["department"] != [ROOT_DEPARTMENT_ID] and m["is_leader_in_dept"] == [1]
        ),
        boss,
    )
    rep = next(
        (
            m
            for m in members
            if (m["userid"] == voice.author_userid if voice else m["is_leader_in_dept"] == [0])
        ),
        boss,
    )
    api = f"{base_url}/api/v1"
    lines = [
        "",
        RULE,
        "wecrm 演示已启动（按 Ctrl-C 停止全部进程）",
        f"  网页服务：       {base_url}/",
        f"  健康检查：       {base_url}/healthz",
        f"  接口文档：       {api}/docs",
        f"  OpenAPI：        {api}/openapi.json",
    ]
    if fake_page_url:
        lines.append(f"  模拟企业微信：   {fake_page_url}")
        lines.append("                  ↑ 在这里查看销售和主管会收到的企业微信消息")
        lines.append(f"  以成员身份发消息：{fake_page_url.rstrip('/')}{CHAT_PATH}")
        lines.append("                  ↑ 发 #帮助#、#今日# 等命令，点审批卡片，添加微信客户")
    lines += ["", "以不同角色登录（演示环境开启了 dev-login，按企业微信账号直接登录）："]
    for label, member in (("老板", boss), ("主管", manager), ("销售", rep)):
        body = f'{{"userid": "{member["userid"]}"}}'
        lines += [
            f"  # {label} {member['name']}",
            f"  curl -s -X POST {api}/auth/dev-login -H 'Content-Type: application/json' "
            f"-d '{body}'",
        ]
    rep_body = f'{{"userid": "{rep["userid"]}"}}'
    lines += [
        "",
        "拿到 token 后查看客户（销售只看到自己的客户，主管看到本团队，老板看到全部）：",
        f"  TOKEN=$(curl -s -X POST {api}/auth/dev-login -H 'Content-Type: application/json' "
        f"-d '{rep_body}' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"token\"])')",
        f"  curl -s '{api}/customers?page_size=5' -H \"Authorization: Bearer $TOKEN\"",
    ]
    if voice is not None:
        lines += [
            "",
            f"语音跟进：{rep['name']}给客户「{voice.customer_name}」记了一条跟进，"
            f"附了产品手册 PDF 和一段录音（{MEMO_FILENAME}，英文）。",
            "worker 用内置的 faster-whisper 模型转写这段录音（第一次运行要先准备模型，稍等片刻）；"
            "跟进规则等转写完成才执行：",
            "客户从意向进入报价，主管收到企业微信消息。时间线里这条跟进的 recordings 是转写状态，"
            "transcript 是转写文字：",
            f"  curl -s '{api}/customers/{voice.customer_id}' -H \"Authorization: Bearer $TOKEN\"",
        ]
    if fake_page_url:
        code = f"{DEMO_CODE_PREFIX}{rep['userid']}"
        lines += [
            "",
            "也可以走真实的小程序登录流程（code → 企业微信 jscode2session）：",
            f"每位成员有一个一次性登录码 {DEMO_CODE_PREFIX}<userid>，例如：",
            f"  curl -s -X POST {api}/auth/login -H 'Content-Type: application/json' "
            f'-d \'{{"code": "{code}"}}\'',
        ]
    lines += ["", "演示成员（企业微信账号）："]
    for member in members:
        lines.append(f"  {member['position']:<6} {member['name']:<4} {member['userid']}")
    lines += [
        "",
        "定时任务马上跑一轮（在同一个目录另开终端）：.venv/bin/wecrm sweep",
        f"各进程的日志（web、worker、scheduler、demo）：{log_dir}/",
    ]
    if mail_dir is not None:
        lines.append(f"本地邮件服务器：客户邮件不会真的发出，保存在 {mail_dir}/")
    lines.append(RULE)
    return "\n".join(lines)
