"""Keyword capture: which categories a chat message hits, read on jieba tokens.

The dictionary is the rule set of kind "keywords" (crm/rules/documents.py checks it, the default
is in crm/rulesets/defaults.py, `dictionary_for` reads the one in force for a team): categories
of words and synonyms (报价: 报价单, 已报价, …), negations, and risk words a manager wants to hear
about. Chat capture asks `match` about every archived message; POST /capture/preview lets a
manager try a dictionary before publishing it.

Matching is on tokens, never substrings. Each dictionary has its own `jieba.Tokenizer` (jieba's
default one is process-wide, and a team's dictionary must not leak into the company's), built
once and kept by document content, so a published change is simply another dictionary. Every
keyword, negation and risk word is added with `add_word` at jieba's own frequency, or just
enough to be one token when jieba does not know it: a very high frequency would make a
keyword swallow its neighbours' characters (符合同行业标准 cut as 符/合同/行业标准), and the
traps must stay traps: 汇报价格 is 汇报/价格, 符合同行业 符合/同行业, 一定金额 一定/金额, while
已发送正式报价单 has 正式报价单 as one token. HMM is off: it only joins runs of single
characters into words jieba does not know, which never are our words, and it would glue a
one-character negation (不, 没) to its neighbour.

Negation. A message is split into clauses at punctuation and line breaks; a keyword (or risk
word) with a negation token at most NEGATION_REACH_TOKENS tokens before it in the same clause
is negated: 还没报价, 不用报价了, 还没给您发报价单 are no quote. A negation after the keyword does
not count: in 合同还没签 the negated verb is 签, and the conversation is still about the
contract, so 合同 is captured. Negations are not counted against each other: 不是不想付款 is a
double negation, but in chat it mostly goes on 只是现在没钱, so it stays negated, an honest
ambiguity the follow-up's snippet lets a manager read. A connective that starts a new predicate
(就, 要, 否则, …: NEGATION_STOPS) ends a negation's reach: 再不处理就退货 is a return threat.
A word found both negated and not (还没报价，明天报价) is a hit; `negated` lists only words
that were found negated every time.

A risk word (投诉, 退货, 太贵了, …) is reported apart from the categories, so a message may be
both a capture and a risk; a negated one (没有质量问题, a rep's reassurance) is not a risk.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jieba
from sqlalchemy.orm import Session

from crm.rulesets import store

KIND = "keywords"
NEGATION_REACH_TOKENS = 4  # 还没 给 您 发 报价单: the negation four tokens before
CACHED_DICTIONARIES = 8  # the company's and a few teams'; each holds jieba's table (~15 MiB)
# Not 、: 还没报价、发货 denies both.
CLAUSE_BREAKS = frozenset("，,。.！!？?；;：:\n\r…~～")
# Words that start a new predicate inside a clause, so a negation before them does not reach
# past them: 再不处理就退货 threatens a return, 不满意我要投诉 is a complaint.
NEGATION_STOPS = frozenset(
    {"就", "才", "要", "就要", "我要", "否则", "不然", "然后", "但", "但是", "可是", "只是", "那就"}
)


@dataclass(frozen=True)
class Hits:
    """What one message hits; words are spelled and ordered as in the dictionary."""

    categories: tuple[str, ...] = ()  # categories hit (dictionary order)
    keywords: tuple[str, ...] = ()  # the words hit
    negated: tuple[str, ...] = ()  # words found, but only negated (还没报价): not captured
    risks: tuple[str, ...] = ()  # risk words found, not negated

    @property
    def captured(self) -> bool:
        """Whether any category was hit: the message makes (part of) a follow-up."""
        return bool(self.categories)

    def __bool__(self) -> bool:
        return self.captured


NO_HITS = Hits()


def can_be_token(word: str) -> bool:
    """Whether jieba can ever cut `word` out as one token: it cuts text into blocks of Chinese
    characters, letters, digits and a few signs first, so a space or punctuation never is."""
    return jieba.re_han_default.fullmatch(word) is not None


class Dictionary:
    """A checked keywords document with its own tokenizer; build it with `Dictionary.of`."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.categories: tuple[str, ...] = tuple(c["name"] for c in document["categories"])
        self._category_of: dict[str, int] = {}
        for index, category in enumerate(document["categories"]):
            for word in category["words"]:
                self._category_of.setdefault(word, index)
        risks = list(document["risk_words"])
        self._risks = frozenset(risks)
        self._negations = frozenset(document["negations"])
        # One order for keywords and risk words: dictionary order, risk words last.
        self._rank = {w: i for i, w in enumerate(dict.fromkeys([*self._category_of, *risks]))}
        frequencies, total = _jieba_table()
        tokenizer = jieba.Tokenizer()
        # jieba's table is loaded once per process; a copy (a few ms) spares each dictionary
        # the second and a half jieba takes to load it, and keeps its words out of the others'.
        tokenizer.FREQ, tokenizer.total, tokenizer.initialized = dict(frequencies), total, True
        for word in (*self._category_of, *self._negations, *self._risks):
            tokenizer.add_word(word)  # jieba's frequency, or just enough to stay one token
        self._cut = functools.partial(tokenizer.lcut, HMM=False)
        self._cut_for_search = functools.partial(tokenizer.lcut_for_search, HMM=False)

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> Dictionary:
        """The dictionary of a checked document, built once per content and kept (LRU)."""
        key = json.dumps(document, sort_keys=True, ensure_ascii=False)
        with _cache_lock:  # built under the lock: two threads never build the same one twice
            found = _cache.get(key)
            if found is None:
                found = _cache[key] = cls(document)
                if len(_cache) > CACHED_DICTIONARIES:
                    _cache.popitem(last=False)
            else:
                _cache.move_to_end(key)
            return found

    def match(self, text: str) -> Hits:
        """The categories, words, negated words and risks of one message."""
        hit: set[str] = set()
        negated: set[str] = set()
        negation_at: int | None = None  # position of the clause's last negation
        position = 0
        for token in self._cut(text):
            if token in CLAUSE_BREAKS or token in NEGATION_STOPS:
                negation_at = None
                continue
            if token.isspace():
                continue
            position += 1
            if token in self._negations:
                negation_at = position
            elif token in self._rank:
                if negation_at is not None and position - negation_at <= NEGATION_REACH_TOKENS:
                    negated.add(token)
                else:
                    hit.add(token)
        if not hit and not negated:
            return NO_HITS
        rank = self._rank.__getitem__
        keywords = sorted((w for w in hit if w in self._category_of), key=rank)
        return Hits(
            categories=tuple(
                self.categories[i] for i in sorted({self._category_of[w] for w in keywords})
            ),
            keywords=tuple(keywords),
            negated=tuple(sorted(negated - hit, key=rank)),
            risks=tuple(sorted((w for w in hit if w in self._risks), key=rank)),
        )

    def is_keyword(self, word: str) -> bool:
        """Whether the word is one of a category's words."""
        return word in self._category_of

    def search_tokens(self, text: str) -> list[str]:
        """The text's tokens as `match` reads them, each long one followed by the shorter words
        inside it (jieba's search mode: 陶瓷制品, 陶瓷, 制品), for crm/similar.py's index."""
        return self._cut_for_search(text)

    def match_many(self, texts: Sequence[str]) -> list[Hits]:
        """`match` for each text; a text repeated in the batch (好的, 收到) is cut once."""
        seen: dict[str, Hits] = {}
        results = []
        for text in texts:
            hits = seen.get(text)
            if hits is None:
                hits = seen[text] = self.match(text)
            results.append(hits)
        return results


def dictionary_for(session: Session, team_id: int | None) -> Dictionary:
    """The dictionary in force for a team's customers (None: the company's)."""
    return Dictionary.of(store.active(session, KIND, team_id).document)


_cache: OrderedDict[str, Dictionary] = OrderedDict()
_cache_lock = threading.Lock()


@functools.cache
def _jieba_table() -> tuple[dict[str, int], int]:
    """jieba's own word frequencies and their total, loaded once per process."""
    jieba.setLogLevel(logging.WARNING)  # it logs its start-up at DEBUG to stderr
    tokenizer = jieba.Tokenizer()
    tokenizer.tmp_dir = _jieba_cache_dir()
    tokenizer.initialize()
    return tokenizer.FREQ, tokenizer.total


def _jieba_cache_dir() -> str:
    """jieba keeps its parsed table in a cache file, by default /tmp/jieba.cache, shared by
    every user of the machine; ours is private to this user (and always writable)."""
    path = os.path.join(tempfile.gettempdir(), f"wecrm-jieba-{os.getuid()}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path
