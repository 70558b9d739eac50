"""Keyword matching on jieba tokens (stand-in: replaced by the keywords branch at merge).

Same interface as the design of issue 11: `Hits`, `Dictionary.of/match/match_many` and
`dictionary_for`; the dictionary here is a small built-in one, not the managers' rule set.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jieba
from sqlalchemy.orm import Session

DEFAULT_DOCUMENT: dict[str, Any] = {
    "categories": [
        {"name": "报价", "words": ["报价", "报价单", "已报价", "正式报价单"]},
        {"name": "合同", "words": ["合同", "签合同", "合同书"]},
        {"name": "付款", "words": ["付款", "打款", "转账", "汇款"]},
        {"name": "定金", "words": ["定金", "订金", "预付款"]},
        {"name": "发货", "words": ["发货", "到货", "物流"]},
        {"name": "安装", "words": ["安装", "上门安装"]},
    ],
    "negations": ["还没", "没有", "未", "不"],
    "risk_words": ["投诉", "退货", "质量问题", "太贵了"],
}


@dataclass(frozen=True)
class Hits:
    categories: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    negated: tuple[str, ...] = ()
    risks: tuple[str, ...] = ()

    @property
    def captured(self) -> bool:
        return bool(self.categories)

    def __bool__(self) -> bool:
        return self.captured


class Dictionary:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self._tokenizer = jieba.Tokenizer()
        self._category_of: dict[str, str] = {}
        self._order = [c["name"] for c in document.get("categories", [])]
        for category in document.get("categories", []):
            for word in category["words"]:
                self._category_of.setdefault(word, category["name"])
        self._negations = frozenset(document.get("negations", []))
        self._risks = frozenset(document.get("risk_words", []))
        for word in (*self._category_of, *self._negations, *self._risks):
            self._tokenizer.add_word(word, freq=100_000)

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> Dictionary:
        return _cached(json.dumps(document, sort_keys=True, ensure_ascii=False))

    def match(self, text: str) -> Hits:
        tokens = self._tokenizer.lcut(text or "")
        categories: list[str] = []
        keywords: list[str] = []
        negated: list[str] = []
        risks: list[str] = []
        for index, token in enumerate(tokens):
            if token in self._risks and token not in risks:
                risks.append(token)
            category = self._category_of.get(token)
            if category is None:
                continue
            if index and tokens[index - 1] in self._negations:
                negated.append(token)
                continue
            if token not in keywords:
                keywords.append(token)
            if category not in categories:
                categories.append(category)
        categories.sort(key=self._order.index)
        return Hits(tuple(categories), tuple(keywords), tuple(negated), tuple(risks))

    def match_many(self, texts: Sequence[str]) -> list[Hits]:
        return [self.match(text) for text in texts]


@lru_cache(maxsize=32)
def _cached(document_json: str) -> Dictionary:
    return Dictionary(json.loads(document_json))


def dictionary_for(session: Session, team_id: int | None) -> Dictionary:
    return Dictionary.of(DEFAULT_DOCUMENT)
