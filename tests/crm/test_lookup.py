"""Finding customers and reps by what a member typed, always inside their reach."""

import pytest

from crm import pool
from crm.actors import Actor
from crm.lookup import Reach, customers_named, reps_named
from tests.factories import make_company, make_customer


@pytest.fixture
def company(session):
    return make_company(session)


def names(session, user, text, reach=Reach.BOOK, limit=7):
    found = customers_named(session, actor=Actor.of(user), text=text, reach=reach, limit=limit)
    return [c.name for c in found]


def test_an_id_a_phone_an_exact_name_or_a_part_each_find_a_customer(company, session, clock):
    rep = company.reps[0][0]
    ceramic = make_customer(session, rep, clock(), name="佛山陶瓷", phone="13800138000")
    make_customer(session, rep, clock(), name="佛山陶瓷二厂", company="南海建材有限公司")

    assert names(session, rep, str(ceramic.id)) == ["佛山陶瓷"]
    assert names(session, rep, "138 0013 8000") == ["佛山陶瓷"]
    assert names(session, rep, "佛山陶瓷") == ["佛山陶瓷"]  # exact beats the longer name
    assert names(session, rep, "佛山") == ["佛山陶瓷", "佛山陶瓷二厂"]
    assert names(session, rep, "南海建材") == ["佛山陶瓷二厂"]
    assert names(session, rep, "佛山", limit=1) == ["佛山陶瓷"]
    assert names(session, rep, "100%") == []  # a wildcard is a literal character
    assert names(session, rep, "  ") == []


def test_a_customer_out_of_reach_is_not_found(company, session, clock):
    mine, colleague = company.reps[0]
    make_customer(session, colleague, clock(), name="同事的客户", phone="13900139000")
    pooled = make_customer(session, mine, clock(), name="公海客户")
    pool.release(session, customer=pooled, reason="测试释放", now=clock())

    assert names(session, mine, "同事的客户") == []
    assert names(session, mine, "13900139000") == []
    assert names(session, mine, "公海客户") == []
    assert names(session, mine, "公海客户", Reach.POOL) == ["公海客户"]
    assert names(session, mine, "同事的客户", Reach.POOL) == []
    other_manager = company.managers[1]
    assert names(session, other_manager, "公海客户", Reach.BOOK_AND_POOL) == []
    assert names(session, company.managers[0], "客户", Reach.BOOK_AND_POOL) == [
        "同事的客户",
        "公海客户",
    ]


def test_reps_are_found_by_name_or_wecom_id_among_those_one_manages(company, session):
    manager = Actor.of(company.managers[0])
    own, other_team = company.reps[0][0], company.reps[1][0]

    assert reps_named(session, actor=manager, text=own.name, limit=2) == [own]
    assert reps_named(session, actor=manager, text=own.wecom_userid, limit=2) == [own]
    assert reps_named(session, actor=manager, text=other_team.name, limit=2) == []
    assert reps_named(session, actor=manager, text=company.managers[0].name, limit=2) == []
