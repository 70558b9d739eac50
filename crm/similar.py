"""Similar won deals (相似成交案例) and hints for a described new customer: helping reps sell.

PRODUCT.md item 7. It lives here, beside crm/keywords.py, rather than in crm/analytics/: it is
not a view of figures but a search, and the stage move itself (crm/customers.change_stage) pushes
its answer to the rep when a customer enters 意向 — a low floor must be able to call it.

The index. Every customer has a document of term counts (models/similar.py): the jieba tokens
of its follow-ups (summary, transcript, next plan), cut by the company keyword dictionary's
tokenizer (so a keyword is one token) in search mode (so 陶瓷制品 also counts as 陶瓷 and 制品);
its profile as prefixed terms (类别:, 区域:, 标签:, 需求匹配:, 字段:key=value for text, enum
and yes/no custom fields); and the keyword categories its follow-ups hit (关注:报价 — read with
the team's dictionary, as chat capture does). It is kept as things are written:
`index_follow_up` adds one follow-up's terms (crm/followups.py, the one place follow-ups are
written), `index_profile` replaces the profile terms (crm/customer_changes.py on create and
update; imports take that path too; rule actions that tag call it as well). `reindex` rebuilds
documents from the rows: the demo seed after its bulk insert, and crm/recordings.py for one
customer when a voice follow-up's transcript is settled. A request never cuts a follow-up.

Scoring: BM25 (k1 1.2, b 0.75) over the won customers (stage 成交) in the actor's scope, with
profile terms weighted PROFILE_WEIGHT. The query is the customer's own document (or a cut
description); only its MAX_QUERY_TERMS rarest terms are scored, so a request reads the postings
of a bounded number of terms (indexed on term) plus one document-frequency aggregate.

Who learns from what. PRODUCT.md enforces scope on every read, analytics included, so a rep is
shown their own won deals, a manager the team's, the boss everyone's; sharing the company's won
deals with every rep is a product decision this module does not take. What is shown of a deal is
its name, company, category, region, tags and the path that won it (stage moves with dates and
days, follow-up methods, the files sent) — never a phone number, an email address or the
owner's contact.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.orm import Session

from crm import calendar, keywords, notifications
from crm.actors import Actor, customer_scope
from crm.errors import Invalid, NotFound
from crm.vocab import Stage
from models import (
    Attachment,
    Customer,
    CustomerDocument,
    CustomerTag,
    CustomerTerm,
    FollowUp,
    StageChange,
    User,
)

K1, B = 1.2, 0.75
PROFILE_WEIGHT = 2.0  # a shared category, region or tag says more than a shared word
MAX_QUERY_TERMS = 32
MAX_DEALS = 20
DEFAULT_DEALS = 5
PUSHED_DEALS = 3
HINT_DEALS = 10  # the similar won deals hints are read from
HINT_WORDS = 10
MAX_DESCRIPTION_CHARS = 500
MAX_FILES_PER_DEAL = 10
MAX_TERM_CHARS = 64
REINDEX_BATCH = 500

# Prefixes of the terms that are not words of a follow-up.
CATEGORY, REGION, TAG, NEED, FIELD = "类别:", "区域:", "标签:", "需求匹配:", "字段:"
CONCERN = "关注:"  # a keyword category a follow-up hit
PROFILE_PREFIXES = (CATEGORY, REGION, TAG, NEED, FIELD)
# A word worth indexing: two or more characters, starting with a letter or a Chinese character.
WORD = re.compile(r"[\u4e00-\u9fffA-Za-z][\u4e00-\u9fffA-Za-z0-9]+")


@dataclass(frozen=True)
class PathStep:
    stage: str
    entered_at: datetime
    days: float  # since the previous step (0 for the first)


@dataclass(frozen=True)
class Count:
    name: str
    count: int


@dataclass(frozen=True)
class SimilarDeal:
    customer_id: int
    name: str
    company: str | None
    category: str | None
    region: str | None
    tags: list[str]
    score: float
    won_at: datetime
    days_to_win: float
    path: list[PathStep]
    methods: list[Count]  # follow-ups until the win, by method
    files: list[str]  # attachments sent until the win, oldest first


@dataclass(frozen=True)
class Hints:
    deals: list[SimilarDeal]
    words: list[Count]  # words the matching deals share and won deals at large do not
    concerns: list[Count]  # keyword categories hit on their follow-ups, by deals
    tags: list[Count]


# --- the index --------------------------------------------------------------------------------


def words_of(tokenizer: keywords.Dictionary, text: str | None) -> Counter[str]:
    """The indexable words of a text, counted; `tokenizer` is the company dictionary (one cut
    for every document and query, whatever team they belong to)."""
    if not text:
        return Counter()
    tokens = tokenizer.search_tokens(text)
    return Counter(t for t in tokens if len(t) <= MAX_TERM_CHARS and WORD.fullmatch(t))


def profile_terms(customer: Customer, tags: Iterable[str]) -> Counter[str]:
    """The customer's profile, with its tags, as prefixed terms, each counted once."""
    terms = [f"{TAG}{tag}" for tag in tags]
    for prefix, value in ((CATEGORY, customer.category), (REGION, customer.region)):
        if value:
            terms.append(prefix + value)
    if customer.need_match:
        terms.append(NEED + customer.need_match)
    for key, value in sorted((customer.custom_values or {}).items()):
        if isinstance(value, bool):
            terms.append(f"{FIELD}{key}={'是' if value else '否'}")
        elif isinstance(value, str) and value.strip():
            terms.append(f"{FIELD}{key}={value.strip()}")
    return Counter(t for t in terms if len(t) <= MAX_TERM_CHARS)


def follow_up_terms(
    tokenizer: keywords.Dictionary, dictionary: keywords.Dictionary, follow_up: FollowUp
) -> Counter[str]:
    """A follow-up's words and the keyword categories it hits in its team's `dictionary`."""
    texts = [follow_up.summary, follow_up.transcript, follow_up.next_plan]
    terms: Counter[str] = Counter()
    for text in texts:
        terms += words_of(tokenizer, text)
    hits = dictionary.match("\n".join(t for t in texts[:2] if t))
    terms.update(CONCERN + category for category in hits.categories)
    return terms


def index_follow_up(
    session: Session, *, customer: Customer, follow_up: FollowUp, now: datetime
) -> None:
    """Add a newly written follow-up to its customer's document."""
    terms = follow_up_terms(
        keywords.dictionary_for(session, None),
        keywords.dictionary_for(session, customer.team_id),
        follow_up,
    )
    _update(session, customer.id, terms, now, keep_profile=True)


def index_profile(session: Session, *, customer: Customer, now: datetime) -> None:
    """Replace the profile terms of a customer's document after a create or an update."""
    session.flush()
    tags = session.scalars(select(CustomerTag.tag).where(CustomerTag.customer_id == customer.id))
    _update(session, customer.id, profile_terms(customer, tags), now, keep_profile=False)


def reindex(session: Session, *, now: datetime, customer_ids: Sequence[int] | None = None) -> int:
    """Rebuild the documents of some customers (all when None) from their rows; returns how many."""
    if customer_ids is None:
        customer_ids = list(session.scalars(select(Customer.id).order_by(Customer.id)))
    for start in range(0, len(customer_ids), REINDEX_BATCH):
        _reindex_batch(session, list(customer_ids[start : start + REINDEX_BATCH]), now)
    return len(customer_ids)


def _reindex_batch(session: Session, ids: list[int], now: datetime) -> None:
    customers = session.scalars(select(Customer).where(Customer.id.in_(ids))).all()
    tags: defaultdict[int, list[str]] = defaultdict(list)
    for customer_id, tag in session.execute(
        select(CustomerTag.customer_id, CustomerTag.tag).where(CustomerTag.customer_id.in_(ids))
    ):
        tags[customer_id].append(tag)
    documents = {c.id: profile_terms(c, tags[c.id]) for c in customers}
    team_of = {c.id: c.team_id for c in customers}
    dictionaries = {
        team: keywords.dictionary_for(session, team) for team in {None, *team_of.values()}
    }
    for follow_up in session.scalars(select(FollowUp).where(FollowUp.customer_id.in_(ids))):
        documents[follow_up.customer_id] += follow_up_terms(
            dictionaries[None], dictionaries[team_of[follow_up.customer_id]], follow_up
        )
    session.execute(delete(CustomerTerm).where(CustomerTerm.customer_id.in_(ids)))
    session.execute(delete(CustomerDocument).where(CustomerDocument.customer_id.in_(ids)))
    postings = [
        {"customer_id": cid, "term": term, "count": count}
        for cid, terms in documents.items()
        for term, count in terms.items()
    ]
    if postings:
        session.execute(insert(CustomerTerm), postings)
    session.execute(
        insert(CustomerDocument),
        [
            {"customer_id": cid, "length": terms.total(), "updated_at": now}
            for cid, terms in documents.items()
        ],
    )
    session.flush()


def _update(
    session: Session, customer_id: int, terms: Counter[str], now: datetime, *, keep_profile: bool
) -> None:
    """Merge terms into one customer's postings: added to the words, or replacing the profile."""
    session.flush()
    postings = {
        p.term: p
        for p in session.scalars(
            select(CustomerTerm).where(CustomerTerm.customer_id == customer_id)
        )
    }
    for term in list(postings):
        if not keep_profile and term.startswith(PROFILE_PREFIXES) and term not in terms:
            session.delete(postings.pop(term))
    for term, count in terms.items():
        found = postings.get(term)
        if found is None:
            postings[term] = CustomerTerm(customer_id=customer_id, term=term, count=count)
            session.add(postings[term])
        elif keep_profile:
            found.count += count
        else:
            found.count = count
    length = sum(p.count for p in postings.values())
    document = session.get(CustomerDocument, customer_id)
    if document is None:
        session.add(CustomerDocument(customer_id=customer_id, length=length, updated_at=now))
    else:
        document.length, document.updated_at = length, now
    session.flush()


# --- the searches -----------------------------------------------------------------------------


def similar_deals(
    session: Session, *, actor: Actor, customer_id: int, limit: int = DEFAULT_DEALS
) -> list[SimilarDeal]:
    """The won customers in the actor's scope most like a customer in scope, best first."""
    if not 1 <= limit <= MAX_DEALS:
        raise Invalid(f"数量应在 1 到 {MAX_DEALS} 之间", code="limit_out_of_range", field="limit")
    if not _is_visible(session, actor, customer_id):
        raise NotFound("客户")
    query = Counter(
        dict(
            session.execute(
                select(CustomerTerm.term, CustomerTerm.count).where(
                    CustomerTerm.customer_id == customer_id
                )
            ).all()
        )
    )
    ranked = _rank(session, actor=actor, query=query, exclude_id=customer_id, limit=limit)
    return _deals(session, ranked)


def hints(session: Session, *, actor: Actor, description: str) -> Hints:
    """What the won deals most like a described new customer had in common."""
    description = (description or "").strip()
    if not description:
        raise Invalid("请描述客户情况", code="required", field="description")
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise Invalid(
            f"描述不能超过{MAX_DESCRIPTION_CHARS}字", code="too_long", field="description"
        )
    tokenizer = keywords.dictionary_for(session, None)
    query = words_of(tokenizer, description)
    ranked = _rank(session, actor=actor, query=query, exclude_id=None, limit=HINT_DEALS)
    deals = _deals(session, ranked)
    if not deals:
        return Hints(deals=[], words=[], concerns=[], tags=[])
    ids = [deal.customer_id for deal in deals]
    in_deals: Counter[str] = Counter(
        session.scalars(select(CustomerTerm.term).where(CustomerTerm.customer_id.in_(ids)))
    )
    # Keywords (报价, 定金) are counted as the concerns they stand for, not again as words.
    words = [
        t
        for t in in_deals
        if not t.startswith((*PROFILE_PREFIXES, CONCERN)) and not tokenizer.is_keyword(t)
    ]
    # A word most won deals share (客户, 安排, 送货) says nothing about these ones: keep the words
    # more common among the matching deals than among all won deals in scope.
    won = _document_frequencies(session, actor, words)
    total = _won_count(session, actor)
    distinctive = [
        w for w in words if w not in query and in_deals[w] / len(ids) > won.get(w, 0) / total
    ]
    # Search mode indexes 外墙砖 as 外墙, 墙砖 and 外墙砖: name the whole word when it is as common.
    distinctive = [
        w
        for w in distinctive
        if not any(
            w != other and w in other and in_deals[other] == in_deals[w] for other in distinctive
        )
    ]
    return Hints(
        deals=deals,
        words=_top(in_deals, distinctive, "", HINT_WORDS),
        concerns=_top(in_deals, [t for t in in_deals if t.startswith(CONCERN)], CONCERN, None),
        tags=_top(in_deals, [t for t in in_deals if t.startswith(TAG)], TAG, HINT_WORDS),
    )


def push_similar_deals(session: Session, *, customer: Customer, now: datetime) -> None:
    """Tell the owner of a customer who just entered 意向 which won deals it resembles (once a
    day per customer); nothing when it has no owner or no similar won deal in their scope."""
    owner = session.get(User, customer.owner_id) if customer.owner_id is not None else None
    session.flush()
    if owner is None or not _is_visible(session, Actor.of(owner), customer.id):
        return  # an owner who cannot see the customer (moved to another team) learns nothing
    deals = similar_deals(
        session, actor=Actor.of(owner), customer_id=customer.id, limit=PUSHED_DEALS
    )
    if not deals:
        return
    lines = [f"「{customer.name}」进入意向阶段，可参考这些相似的成交客户："]
    for number, deal in enumerate(deals, 1):
        path = "→".join(step.stage for step in deal.path)
        sent = f"，发过：{'、'.join(deal.files[:3])}" if deal.files else ""
        lines.append(f"{number}. {deal.name}：{path}，{deal.days_to_win:.0f} 天成交{sent}")
    notifications.notify(
        session,
        recipients=[owner],
        title="相似成交案例",
        text="\n".join(lines),
        now=now,
        customer_id=customer.id,
        dedupe_key=f"similar-deals:{customer.id}:{calendar.local_date(now).isoformat()}",
    )


# --- scoring ----------------------------------------------------------------------------------


def _is_visible(session: Session, actor: Actor, customer_id: int) -> bool:
    found = session.scalar(
        select(Customer.id).where(Customer.id == customer_id, customer_scope(actor))
    )
    return found is not None


def _won_in_scope(actor: Actor) -> list[ColumnElement[bool]]:
    return [Customer.stage == Stage.WON.value, customer_scope(actor)]


def _won_count(session: Session, actor: Actor) -> int:
    return session.scalar(select(func.count()).where(*_won_in_scope(actor))) or 0


def _document_frequencies(session: Session, actor: Actor, terms: Iterable[str]) -> dict[str, int]:
    terms = list(terms)
    if not terms:
        return {}
    rows = session.execute(
        select(CustomerTerm.term, func.count())
        .join(Customer, Customer.id == CustomerTerm.customer_id)
        .where(*_won_in_scope(actor), CustomerTerm.term.in_(terms))
        .group_by(CustomerTerm.term)
    )
    return {term: count for term, count in rows}


def _rank(
    session: Session,
    *,
    actor: Actor,
    query: Counter[str],
    exclude_id: int | None,
    limit: int,
) -> list[tuple[int, float]]:
    """BM25 over the won customers in scope: (customer id, score), best first."""
    frequencies = _document_frequencies(session, actor, query)
    if not frequencies:
        return []
    won = session.execute(
        select(func.count(), func.avg(CustomerDocument.length))
        .join(Customer, Customer.id == CustomerDocument.customer_id)
        .where(*_won_in_scope(actor))
    ).one()
    total, average_length = won[0], float(won[1] or 1) or 1.0
    weight = {
        term: math.log(1 + (total - df + 0.5) / (df + 0.5))
        * (PROFILE_WEIGHT if term.startswith(PROFILE_PREFIXES) else 1.0)
        * (1 + math.log(query[term]))
        for term, df in frequencies.items()
    }
    chosen = sorted(weight, key=lambda t: (-weight[t], t))[:MAX_QUERY_TERMS]
    conditions = [*_won_in_scope(actor), CustomerTerm.term.in_(chosen)]
    if exclude_id is not None:
        conditions.append(CustomerTerm.customer_id != exclude_id)
    postings = session.execute(
        select(
            CustomerTerm.customer_id, CustomerTerm.term, CustomerTerm.count, CustomerDocument.length
        )
        .join(Customer, Customer.id == CustomerTerm.customer_id)
        .join(CustomerDocument, CustomerDocument.customer_id == CustomerTerm.customer_id)
        .where(*conditions)
    )
    scores: defaultdict[int, float] = defaultdict(float)
    for customer_id, term, count, length in postings:
        norm = K1 * (1 - B + B * length / average_length)
        scores[customer_id] += weight[term] * count * (K1 + 1) / (count + norm)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]


def _top(counts: Counter[str], terms: Iterable[str], prefix: str, limit: int | None) -> list[Count]:
    ranked = sorted(terms, key=lambda t: (-counts[t], t))
    return [Count(t.removeprefix(prefix), counts[t]) for t in ranked[:limit]]


# --- the deals and the paths that won them ----------------------------------------------------


def _deals(session: Session, ranked: list[tuple[int, float]]) -> list[SimilarDeal]:
    """Three bounded reads for at most MAX_DEALS customers: history, follow-ups, files."""
    ids = [customer_id for customer_id, _ in ranked]
    if not ids:
        return []
    customers = {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(ids)))}
    tags: defaultdict[int, list[str]] = defaultdict(list)
    for customer_id, tag in session.execute(
        select(CustomerTag.customer_id, CustomerTag.tag)
        .where(CustomerTag.customer_id.in_(ids))
        .order_by(CustomerTag.tag)
    ):
        tags[customer_id].append(tag)
    history: defaultdict[int, list[tuple[str, datetime]]] = defaultdict(list)
    for customer_id, stage, at in session.execute(
        select(StageChange.customer_id, StageChange.to_stage, StageChange.changed_at)
        .where(StageChange.customer_id.in_(ids))
        .order_by(StageChange.customer_id, StageChange.changed_at, StageChange.id)
    ):
        history[customer_id].append((stage, at))
    won_at = {
        cid: max((at for stage, at in moves if stage == Stage.WON), default=moves[-1][1])
        for cid, moves in history.items()
    }
    methods: defaultdict[int, Counter[str]] = defaultdict(Counter)
    for customer_id, method, at in session.execute(
        select(FollowUp.customer_id, FollowUp.method, FollowUp.happened_at).where(
            FollowUp.customer_id.in_(ids)
        )
    ):
        if customer_id in won_at and at <= won_at[customer_id]:
            methods[customer_id][method] += 1
    files: defaultdict[int, list[str]] = defaultdict(list)
    for customer_id, filename, at in session.execute(
        select(FollowUp.customer_id, Attachment.filename, FollowUp.happened_at)
        .join(Attachment, Attachment.follow_up_id == FollowUp.id)
        .where(FollowUp.customer_id.in_(ids))
        .order_by(FollowUp.happened_at, Attachment.id)
    ):
        sent = files[customer_id]
        if at <= won_at.get(customer_id, at) and filename not in sent:
            sent.append(filename)
    deals = []
    for customer_id, score in ranked:
        customer, moves = customers[customer_id], history[customer_id]
        if not moves:
            continue  # history is whole from each creation; a row without it is not a deal
        path = [m for m in moves if m[1] <= won_at[customer_id]]
        deals.append(
            SimilarDeal(
                customer_id=customer_id,
                name=customer.name,
                company=customer.company,
                category=customer.category,
                region=customer.region,
                tags=tags[customer_id],
                score=round(score, 4),
                won_at=won_at[customer_id],
                days_to_win=_days(path[0][1], won_at[customer_id]),
                path=[
                    PathStep(stage, at, _days(path[i - 1][1], at) if i else 0.0)
                    for i, (stage, at) in enumerate(path)
                ],
                methods=[Count(m, n) for m, n in methods[customer_id].most_common()],
                files=files[customer_id][:MAX_FILES_PER_DEAL],
            )
        )
    return deals


def _days(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds() / 86400, 1)
