"""The pack every company starts with: exactly the rules of the seed customer.

- grading: 累计询价 ≥ 3 且有明确预算 → A (everyone else C until a manager adds more);
- trigger: a follow-up saying 已发送正式报价单 with a PDF attached moves 意向 → 报价 and gives
  the manager a task and a WeCom message;
- timers: 7 days in 报价 without a follow-up reminds the owner and copies the manager; 30 days
  without a follow-up releases an open customer to the public pool;
- pool: the default policy.
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
}
