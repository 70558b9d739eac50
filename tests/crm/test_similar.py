"""Similar won deals, hints for a described customer, the index behind them and the 意向 push."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm import customer_changes, similar
from crm.actors import Actor
from crm.errors import Invalid, NotFound
from crm.followups import StoredFile, add_follow_up
from crm.vocab import ContactMethod, Stage
from models import Customer, CustomerDocument, CustomerTerm, OutboxMessage
from tests.factories import make_company, make_customer

CERAMICS = "醴陵陶瓷厂"
DESCRIPTION = "厂房面积5000平，生产陶瓷制品"


def _follow_up(session, clock, customer: Customer, actor: Actor, text: str, **kwargs) -> None:
    add_follow_up(
        session,
        actor=actor,
        customer=customer,
        method=kwargs.pop("method", ContactMethod.PHONE),
        summary=text,
        happened_at=clock(),
        now=clock(),
        **kwargs,
    )


def _move(session, clock, customer: Customer, actor: Actor, stage: Stage) -> None:
    customer_changes.move_stage(
        session, actor=actor, customer_id=customer.id, to_stage=stage, now=clock(), cause="测试"
    )


def _won_deal(session, clock, owner, name: str, texts: list[str], **values) -> Customer:
    """A customer walked to 成交 over a few days, one follow-up per stage."""
    actor = Actor.of(owner)
    customer = make_customer(session, owner, clock(), name=name, phone=None, **values)
    for stage, text in zip((Stage.INTEREST, Stage.QUOTE, Stage.WON), texts, strict=True):
        clock.advance(days=3)
        files = []
        if stage is Stage.QUOTE:
            files = [StoredFile(f"{name}报价单.pdf", "application/pdf", 10, "0" * 64, "key.pdf")]
        _follow_up(session, clock, customer, actor, text, files=files)
        _move(session, clock, customer, actor, stage)
    session.commit()
    return customer


@pytest.fixture
def deals(session, clock):
    company = make_company(session)
    rep = company.reps[0][0]
    ceramics = _won_deal(
        session,
        clock,
        rep,
        CERAMICS,
        [
            "陶瓷厂新建厂房，车间面积约6000平，需要防滑地砖",
            "报价：防滑地砖和外墙砖合计约40万元",
            "签订购销合同，收到定金12万元",
        ],
        category="工程客户",
        region="醴陵市",
        tags=["大单"],
    )
    bathroom = _won_deal(
        session,
        clock,
        rep,
        "长沙卫浴翻新",
        ["卫生间改造，想看看马桶和花洒", "客户对比了两款浴室柜", "客户确认浴室柜订单，已付款"],
        category="零售客户",
        region="长沙县",
        tags=["别墅"],
    )
    other_team = _won_deal(
        session,
        clock,
        company.reps[1][0],
        "株洲陶瓷二厂",
        ["陶瓷厂新建厂房，需要防滑地砖", "报价防滑地砖", "签订购销合同，收到定金"],
        category="工程客户",
        region="醴陵市",
    )
    return company, ceramics, bathroom, other_team


def test_an_obviously_similar_won_deal_ranks_first_with_the_path_that_won_it(session, clock, deals):
    company, ceramics, bathroom, _ = deals
    rep = company.reps[0][0]
    target = make_customer(
        session, rep, clock(), name="攸县瓷业", category="工程客户", region="醴陵市", tags=["大单"]
    )
    _follow_up(session, clock, target, Actor.of(rep), "客户新建陶瓷厂房，问防滑地砖价格")
    session.commit()

    found = similar.similar_deals(session, actor=Actor.of(rep), customer_id=target.id)

    assert [d.customer_id for d in found] == [ceramics.id, bathroom.id]
    best = found[0]
    assert [step.stage for step in best.path] == ["潜在", "意向", "报价", "成交"]
    assert [step.days for step in best.path] == [0.0, 3.0, 3.0, 3.0]
    assert best.days_to_win == 9.0
    assert best.files == [f"{CERAMICS}报价单.pdf"]
    assert best.methods == [similar.Count("电话", 3)]
    assert (best.category, best.region, best.tags) == ("工程客户", "醴陵市", ["大单"])


def test_open_customers_are_no_deals_and_the_customer_is_not_its_own_match(session, clock, deals):
    company, ceramics, *_ = deals
    rep = company.reps[0][0]
    _move(session, clock, ceramics, Actor.of(rep), Stage.LOST)
    session.commit()
    found = similar.similar_deals(session, actor=Actor.of(rep), customer_id=ceramics.id)
    assert ceramics.id not in [d.customer_id for d in found]


def test_deals_are_read_in_the_actors_scope_and_a_customer_out_of_scope_is_not_found(
    session, clock, deals
):
    company, ceramics, bathroom, other_team = deals
    rep, stranger = company.reps[0][0], company.reps[1][0]
    target = make_customer(session, rep, clock(), category="工程客户", region="醴陵市")

    mine = similar.similar_deals(session, actor=Actor.of(rep), customer_id=target.id)
    bosses = similar.similar_deals(session, actor=Actor.of(company.boss), customer_id=target.id)
    managers = similar.similar_deals(
        session, actor=Actor.of(company.managers[0]), customer_id=target.id
    )

    # The target shares its category and region with both ceramics deals, nothing with the other.
    assert [d.customer_id for d in mine] == [ceramics.id]
    assert [d.customer_id for d in managers] == [ceramics.id]
    assert {d.customer_id for d in bosses} == {ceramics.id, other_team.id}
    assert bathroom.id not in {d.customer_id for d in bosses}
    with pytest.raises(NotFound):
        similar.similar_deals(session, actor=Actor.of(stranger), customer_id=target.id)
    with pytest.raises(Invalid):
        similar.similar_deals(session, actor=Actor.of(rep), customer_id=target.id, limit=0)


def test_hints_for_the_seeds_example_name_the_products_and_concerns_of_matching_deals(
    session, deals
):
    company, ceramics, *_ = deals

    found = similar.hints(session, actor=Actor.of(company.reps[0][0]), description=DESCRIPTION)

    assert found.deals[0].customer_id == ceramics.id
    words = [w.name for w in found.words]
    assert {"外墙砖", "地砖", "防滑"} <= set(words)
    assert "墙砖" not in words  # the whole word is named, not its parts
    assert "马桶" not in words  # the bathroom deal shares no word with a ceramics factory
    assert {c.name for c in found.concerns} >= {"报价", "合同", "定金"}
    assert [t.name for t in found.tags] == ["大单"]


@pytest.mark.parametrize(("text", "code"), [("  ", "required"), ("厂" * 501, "too_long")])
def test_a_blank_or_overlong_description_is_refused(session, deals, text, code):
    company, *_ = deals
    with pytest.raises(Invalid) as refused:
        similar.hints(session, actor=Actor.of(company.boss), description=text)
    assert refused.value.code == code


def test_the_maintained_index_equals_a_rebuild_from_the_rows(session, clock, deals):
    company, ceramics, *_ = deals
    customer_changes.update_customer(
        session,
        actor=Actor.of(company.boss),
        customer_id=ceramics.id,
        values={"region": "攸县"},
        tags=["回头客"],
        now=clock(),
    )
    session.commit()

    def postings() -> set[tuple[int, str, int]]:
        rows = session.execute(
            select(CustomerTerm.customer_id, CustomerTerm.term, CustomerTerm.count)
        )
        return set(map(tuple, rows))

    def lengths() -> set[tuple[int, int]]:
        rows = session.execute(select(CustomerDocument.customer_id, CustomerDocument.length))
        return set(map(tuple, rows))

    maintained, maintained_lengths = postings(), lengths()
    assert (ceramics.id, "区域:攸县", 1) in maintained
    assert (ceramics.id, "标签:回头客", 1) in maintained
    assert (ceramics.id, "区域:醴陵市", 1) not in maintained
    assert (ceramics.id, "关注:定金", 1) in maintained
    similar.reindex(session, now=clock())
    assert postings() == maintained
    assert lengths() == maintained_lengths


def test_entering_interest_pushes_the_top_similar_deals_to_the_rep_once(session, clock, deals):
    company, *_ = deals
    rep = company.reps[0][0]
    target = make_customer(
        session, rep, clock(), name="攸县瓷业", category="工程客户", region="醴陵市"
    )
    before = session.scalar(select(OutboxMessage.id).order_by(OutboxMessage.id.desc()).limit(1))

    _move(session, clock, target, Actor.of(rep), Stage.INTEREST)
    _move(session, clock, target, Actor.of(rep), Stage.LEAD)
    _move(session, clock, target, Actor.of(rep), Stage.INTEREST)
    session.commit()

    pushed = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.customer_id == target.id, OutboxMessage.id > (before or 0)
        )
    ).all()
    assert len(pushed) == 1
    assert pushed[0].recipient_id == rep.id
    text = pushed[0].content["description"]
    assert "攸县瓷业" in text and f"1. {CERAMICS}" in text and "报价单.pdf" in text
