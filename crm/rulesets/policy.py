"""The public-pool policy: the one rule set that is settings rather than rules.

`crm.pool.pool_policy` reads the one in force from the store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class AutoAssign(StrEnum):
    ROUND_ROBIN = "round_robin"  # the active rep who least recently got an auto-assignment
    LEAST_LOADED = "least_loaded"  # the active rep holding the fewest open customers


@dataclass(frozen=True)
class PoolPolicy:
    claims_per_day: int = 5  # claims one rep may make per business day
    max_holdings: int = 200  # open customers (潜在/意向/报价) a rep may hold before claiming more
    cooldown_days: int = 7  # days before a customer's previous owner may claim it back
    auto_assign: AutoAssign = AutoAssign.LEAST_LOADED

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> PoolPolicy:
        values = {**asdict(cls()), **document}
        return cls(
            claims_per_day=int(values["claims_per_day"]),
            max_holdings=int(values["max_holdings"]),
            cooldown_days=int(values["cooldown_days"]),
            auto_assign=AutoAssign(values["auto_assign"]),
        )

    def to_document(self) -> dict[str, Any]:
        return {**asdict(self), "auto_assign": self.auto_assign.value}
