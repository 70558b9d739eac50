"""The product's rules as the planner applies them, so planned data obeys what wecrm enforces.

Grades come from the real grading engine (`crm.rules.grading.Grading`) over the built-in facts,
the pool release from the default timer rule that releases an open customer, and days from the
business timezone of `crm.calendar`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crm.calendar import BUSINESS_TZ, local_date
from crm.rules import documents
from crm.rules.facts import BUILT_IN, Subject
from crm.rules.grading import Grading
from crm.rulesets.defaults import DEFAULT_DOCUMENTS

__all__ = ["BUSINESS_TZ", "Grader", "PoolRelease", "default_pool_release", "local_date"]


class Grader:
    """A grading rule set (a rule document) applied to planned customer values."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        rules, default = documents.grading_rules(document)
        self._grading = Grading(rules, default, BUILT_IN)

    def grade(self, values: Mapping[str, Any], tags: Iterable[str], now: datetime) -> str | None:
        """The grade the rule set gives a customer with these column values and tags."""
        grade, _rule = self._grading.decide(Subject(values=values, tags=frozenset(tags), now=now))
        return grade


@dataclass(frozen=True)
class PoolRelease:
    """When the timers release a quiet open customer to the pool, and the reason they record."""

    after_days: float
    reason: str


def default_pool_release() -> PoolRelease:
    """The release step of the default timer pack (30 days without a follow-up, today)."""
    for rule in documents.timer_rules(DEFAULT_DOCUMENTS["timers"]):
        for step in rule.steps:
            for action in step.do:
                if action["action"] == "release_to_pool":
                    return PoolRelease(step.after_days, action["reason"])
    raise LookupError("the default timers release nobody to the pool")
