"""The pack every company starts with: exactly the rules of the seed customer.

- grading: 累计询价 ≥ 3 且有明确预算 → A (everyone else C until a manager adds more);
- trigger: a follow-up saying 已发送正式报价单 with a PDF attached moves 意向 → 报价 and gives
  the manager a task and a WeCom message;
- timers: 7 days in 报价 without a follow-up reminds the owner and copies the manager; 30 days
  without a follow-up releases an open customer to the public pool;
- pool: the default policy;
- keywords: the chat-capture dictionary (crm/keywords.py): the six categories a sale moves
  through (报价, 合同, 付款, 定金, 发货, 安装) with the words and synonyms reps use in WeCom,
  the negations that deny them (还没报价), and the risk words a manager wants to hear about.
"""

from __future__ import annotations

from typing import Any

from crm.rulesets.policy import PoolPolicy
from crm.vocab import OPEN_STAGES

DEFAULT_DOCUMENTS: dict[str, dict[str, Any]] = {
    "grading": {
        "rules": [
            {
                "name": "询价≥3且有明确预算",
                "when": {
                    "all": [
                        {"fact": "inquiry_count", "op": ">=", "value": 3},
                        {"fact": "has_budget", "op": "==", "value": True},
                    ]
                },
                "grade": "A",
            }
        ],
        "default": "C",
    },
    "triggers": {
        "rules": [
            {
                "name": "正式报价单已发送",
                "on": "follow_up_created",
                "when": {
                    "all": [
                        {"fact": "stage", "op": "==", "value": "意向"},
                        {"fact": "follow_up.text", "op": "contains", "value": "已发送正式报价单"},
                        {"fact": "follow_up.attachment_types", "op": "has", "value": "pdf"},
                    ]
                },
                "do": [
                    {"action": "set_stage", "stage": "报价"},
                    {
                        "action": "create_task",
                        "for": "manager",
                        "title": "审核报价：{customer}",
                        "due_in_hours": 24,
                    },
                    {
                        "action": "notify",
                        "to": "manager",
                        "text": "{owner} 已向「{customer}」发送正式报价单，客户进入报价阶段，"
                        "请审核。",
                    },
                ],
            }
        ]
    },
    "timers": {
        "rules": [
            {
                "name": "报价7天未跟进提醒",
                "when": {"fact": "stage", "op": "==", "value": "报价"},
                "clock": "last_follow_up",
                "steps": [
                    {
                        "after_days": 7,
                        "do": [
                            {
                                "action": "notify",
                                "to": "owner",
                                "cc": "manager",
                                "text": "「{customer}」报价后已 {days} 天没有跟进，请尽快联系。",
                            },
                            {
                                "action": "create_task",
                                "for": "owner",
                                "cc": "manager",
                                "title": "跟进报价客户：{customer}",
                                "due_in_hours": 0,  # already late: on today's list at once
                            },
                        ],
                    }
                ],
            },
            {
                "name": "30天未跟进释放公海",
                "when": {"fact": "stage", "op": "in", "value": [s.value for s in OPEN_STAGES]},
                "clock": "last_follow_up",
                "steps": [
                    {
                        "after_days": 30,
                        "do": [{"action": "release_to_pool", "reason": "30天未跟进，自动释放"}],
                    }
                ],
            },
        ]
    },
    "pool": PoolPolicy().to_document(),
    "keywords": {
        "categories": [
            {
                "name": "报价",
                "words": [
                    "报价",
                    "报价单",
                    "已报价",
                    "正式报价单",
                    "报个价",
                    "发报价",
                    "询价",
                    "报价表",
                    "价格表",
                    "价目表",
                ],
            },
            {
                "name": "合同",
                "words": [
                    "合同",
                    "签合同",
                    "合同盖章",
                    "签约",
                    "已签约",
                    "购销合同",
                    "合同草稿",
                    "协议",
                ],
            },
            {
                "name": "付款",
                "words": [
                    "付款",
                    "打款",
                    "转账",
                    "汇款",
                    "预付款",
                    "尾款",
                    "收尾款",
                    "全款",
                    "货款",
                    "到账",
                    "付清",
                    "结款",
                ],
            },
            {"name": "定金", "words": ["定金", "付定金", "交定金", "订金", "首付"]},
            {
                "name": "发货",
                "words": ["发货", "已发货", "到货", "送货", "物流单", "快递单", "提货", "装车"],
            },
            {
                "name": "安装",
                "words": ["安装", "上门安装", "安装师傅", "铺贴", "施工", "测量", "量尺寸"],
            },
        ],
        "negations": [
            "还没",
            "没有",
            "没",
            "未",
            "不",
            "尚未",
            "别",
            "还未",
            "并未",
            "不用",
            "不要",
            "不想",
            "不会",
            "暂不",
            "无需",
            "不必",
            "未能",
            "没能",
        ],
        "risk_words": [
            "投诉",
            "退货",
            "退款",
            "换货",
            "质量问题",
            "太贵了",
            "差评",
            "骗人",
            "不满意",
            "开裂",
            "色差",
            "破损",
            "维权",
            "12315",
        ],
    },
}
