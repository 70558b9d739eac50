"""Email rules without a database: placeholders, addresses and rendering."""

from __future__ import annotations

import pytest

from crm import emails, placeholders
from crm.email_addresses import normalise_email
from crm.errors import Invalid
from crm.rules.actions import PLACEHOLDERS as RULE_PLACEHOLDERS
from models import Customer, EmailTemplate, User


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{客户}您好，{公司}", None),
        ("价格 {{含税}}", None),
        ("{客户名}您好", "中的占位符「{客户名}」不认识，可用：{客户}（客户名称）"),
        ("{客户!r}", "中的占位符「{客户}」不认识"),
        ("{客户:>10}", "中的占位符「{客户}」不认识"),
        ("{}", "中的占位符「{}」不认识"),
        ("{客户.name}", "中的占位符「{客户.name}」不认识"),
        ("优惠 {客户", "中的花括号不成对（要写花括号本身请用 {{ 和 }}）"),
        ("优惠 }", "中的花括号不成对（要写花括号本身请用 {{ 和 }}）"),
    ],
)
def test_a_template_names_its_first_bad_placeholder(template, problem):
    found = placeholders.problem(template, emails.PLACEHOLDERS)
    assert found == problem if problem is None else found.startswith(problem)


def test_rules_and_emails_check_placeholders_the_same_way_with_their_own_vocabulary():
    assert placeholders.problem("{customer}", RULE_PLACEHOLDERS) is None
    assert "「{customer}」不认识" in placeholders.problem("{customer}", emails.PLACEHOLDERS)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Li.Na@Example.COM", "Li.Na@example.com"),
        (" ｌｉ＠ｑｑ．ｃｏｍ ", "li@qq.com"),  # a full-width input method
        ("sales+crm@mail.xiangci.example.com", "sales+crm@mail.xiangci.example.com"),
        ("a@例子.中国", "a@xn--fsqu00a.xn--fiqs8s"),
        ("", None),
        (None, None),
    ],
)
def test_addresses_are_normalised(raw, expected):
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(
    "raw", ["zhang@qq", "张三@qq.com", "a b@c.com", "a@@b.com", "a@-b.com", "a@1.2.3.4", "@qq.com"]
)
def test_malformed_addresses_are_refused_in_chinese(raw):
    with pytest.raises(Invalid, match="^邮箱格式不正确") as refused:
        normalise_email(raw, field="to")
    assert (refused.value.code, refused.value.field) == ("invalid_email", "to")


def test_render_fills_every_placeholder_and_keeps_the_subject_on_one_line():
    template = EmailTemplate(
        subject="{客户}您好：{公司}报价",
        body="{客户}（{客户公司}）\n{销售} {销售手机} {销售邮箱}",
        attachments=[],
    )
    customer = Customer(name="刘建国\n工地", company=None, email="liu@example.com")
    sender = User(name="张伟", mobile="13975102231", email=None)

    rendered = emails.render(template, customer=customer, sender=sender, company_name="湘瓷")

    assert rendered.subject == "刘建国 工地您好：湘瓷报价"
    assert rendered.body == "刘建国\n工地（）\n张伟 13975102231 "
    assert rendered.to_address == "liu@example.com"
