"""The fixed vocabularies of the customer book, in the words the users speak."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    LEAD = "潜在"
    INTEREST = "意向"
    QUOTE = "报价"
    WON = "成交"
    LOST = "流失"


class Grade(StrEnum):
    A = "A"
    B = "B"
    C = "C"
    D = "D"


class Category(StrEnum):
    PROJECT = "工程客户"
    RETAIL = "零售客户"


class NeedMatch(StrEnum):
    HIGH = "高"
    MEDIUM = "中"
    LOW = "低"


class Source(StrEnum):
    ONLINE_AD = "线上广告"
    REFERRAL = "老客户转介"
    EXPO = "展会获取"
    COLD_CALL = "电话陌拜"
    WALK_IN = "门店到访"
    WECOM = "企业微信"
    PARTNER = "合作伙伴推荐"
    BIDDING = "招投标"


class ContactMethod(StrEnum):
    PHONE = "电话"
    WECHAT = "微信"
    VISIT = "拜访"
    EMAIL = "邮件"
    WECOM_CHAT = "企微会话"
    VOICE = "语音"


class FollowUpSource(StrEnum):
    MANUAL = "manual"
    CHAT_ARCHIVE = "chat"
    VOICE = "voice"
    EMAIL = "email"


# Not yet won or lost: what a rep still works on, counts toward holdings and may be released.
OPEN_STAGES = (Stage.LEAD, Stage.INTEREST, Stage.QUOTE)

# Which stage may follow which. Moving back one step is allowed (a quote withdrawn); a lost
# customer can only be revived as a lead; a won deal can still be lost (a cancelled order).
ALLOWED_STAGE_MOVES: dict[Stage, frozenset[Stage]] = {
    Stage.LEAD: frozenset({Stage.INTEREST, Stage.LOST}),
    Stage.INTEREST: frozenset({Stage.LEAD, Stage.QUOTE, Stage.LOST}),
    Stage.QUOTE: frozenset({Stage.INTEREST, Stage.WON, Stage.LOST}),
    Stage.WON: frozenset({Stage.LOST}),
    Stage.LOST: frozenset({Stage.LEAD}),
}
