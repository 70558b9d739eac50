"""The root page, `/`: what a newcomer sees first in a browser — what wecrm is, and links to
the API reference, the OpenAPI document, the health check and (when set) the WeCom console.

A client asking for JSON (`Accept: application/json`) gets the same links as JSON. The API
itself is `miniapp_api` (reference page in `miniapp_api/docs.py`); WeCom's callback is `bot`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template_string, request, url_for

from bot.callback import CALLBACK_PATH

home = Blueprint("home", __name__)

SUMMARY = (
    "wecrm 是住在企业微信里的销售 CRM：销售在企业微信里给应用发命令、记跟进，"
    "小程序后端管理客户、阶段、待办、公海、订单审批和邮件，主管自己维护客户分级、自动推进、"
    "提醒和公海规则，几分钟生效、可以一键回滚。"
)
PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>wecrm — 住在企业微信里的销售 CRM</title>
  <style>
    body { font-family: -apple-system, "PingFang SC", "Microsoft YaHei", sans-serif;
           max-width: 46rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.7; color: #222; }
    code { background: #f3f3f3; padding: 0 .3em; border-radius: 3px; }
    li { margin: .3rem 0; }
  </style>
</head>
<body>
  <h1>wecrm</h1>
  <p>{{ summary }}</p>
  <h2>从这里开始</h2>
  <ul>
    <li><a href="{{ links.api_reference }}">接口文档</a>：
      每个接口的说明和请求示例，可以在页面里直接试</li>
    <li><a href="{{ links.openapi }}">OpenAPI 文档（JSON）</a>：给代码生成器和测试工具用</li>
    <li><a href="{{ links.health }}">健康检查</a>：数据库和 Redis 是否正常</li>
    {%- if links.wecom_console %}
    <li><a href="{{ links.wecom_console }}">企业微信控制台</a>：
      成员收到的应用消息、企业微信一侧的设置</li>
    {%- endif %}
  </ul>
  <h2>登录</h2>
  <p>小程序用 <code>POST {{ links.login }}</code>（企业微信 <code>wx.qy.login</code>
  返回的 code）换取 token，之后的请求带上 <code>Authorization: Bearer &lt;token&gt;</code>。
  {%- if dev_login %}
  本环境开启了按成员账号直接登录：<code>POST {{ links.dev_login }}</code>，
  请求体如 <code>{"userid": "zhangwei"}</code>。
  {%- endif %}</p>
  <p>企业微信应用的回调地址：<code>{{ callback_url }}</code></p>
</body>
</html>
"""


@home.get("/")
def index() -> Any:
    """The page in a browser; the same links as JSON for `Accept: application/json`."""
    settings = current_app.extensions["wecrm"].settings
    links = {
        "api_reference": url_for("api.docs_page"),
        "openapi": url_for("api.openapi_document"),
        "health": url_for("healthz"),
        "login": url_for("api.login"),
        "wecom_console": settings.wecom_console_url or None,
    }
    if settings.dev_login:
        links["dev_login"] = url_for("api.dev_login")
    if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
        return {"name": "wecrm", "summary": SUMMARY, "links": links}
    return render_template_string(
        PAGE,
        summary=SUMMARY,
        links=links,
        dev_login=settings.dev_login,
        callback_url=f"{settings.public_url}{CALLBACK_PATH}",
    )
