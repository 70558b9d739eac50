"""The SQL reading of a condition (bulk re-grade, timers) and its Python reading (single
events) decide the same on a random population, for random conditions over every fact."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, true

from crm import custom_fields
from crm.actors import Actor
from crm.rules import conditions, grading
from crm.rules.facts import Context, Kind, registry
from crm.vocab import Grade, Stage
from models import Customer, CustomerTag
from tests.factories import make_company

TAGS = ["老客户", "需要安装", "竞品接触"]
REGIONS = ["长沙", "株洲", "湘潭", None]
NAMES = ["湘瓷建材", "长沙卫浴", "株洲陶瓷厂", "Hunan Tile", "hunan tile"]


@pytest.fixture
def population(session, clock):
    """120 customers with every fact varied, missing values included."""
    company = make_company(session)
    boss = Actor.of(company.boss)
    for key, label, kind, options in [
        ("area", "面积", "number", []),
        ("install", "需要安装", "bool", []),
        ("level", "客户层级", "enum", ["总部", "分店"]),
        ("opened", "开业日期", "date", []),
    ]:
        custom_fields.define_field(
            session,
            actor=boss,
            key=key,
            label=label,
            kind=kind,
            options=options,
            is_required=False,
            is_tag_dimension=False,
            now=clock(),
        )
    reps = [r for team in company.reps for r in team]
    rng = random.Random(20261126)
    now = clock()
    for n in range(120):
        owner = rng.choice([*reps, None])
        created = now - timedelta(days=rng.uniform(0, 90))
        follow_up = rng.choice([None, created + timedelta(days=rng.uniform(0, 5))])
        custom = {
            "area": rng.choice([None, 120, 4999.5, 5000]),
            "install": rng.choice([None, True, False]),
            "level": rng.choice([None, "总部", "分店"]),
            "opened": rng.choice([None, "2025-01-01", "2026-03-01"]),
        }
        customer = Customer(
            name=f"{rng.choice(NAMES)}{n}",
            company=rng.choice([None, "湘瓷", "Tile Co"]),
            region=rng.choice(REGIONS),
            category=rng.choice([None, "工程客户", "零售客户"]),
            stage=rng.choice(list(Stage)).value,
            grade=rng.choice([None, *(g.value for g in Grade)]),
            source=rng.choice([None, "线上广告", "展会获取"]),
            need_match=rng.choice([None, "高", "低"]),
            expected_amount=rng.choice([None, Decimal("0"), Decimal("50000.50"), Decimal("3")]),
            inquiry_count=rng.randint(0, 5),
            has_budget=rng.random() < 0.5,
            attended_expo=rng.random() < 0.3,
            completeness=rng.choice([0, 50, 100]),
            owner_id=owner.id if owner else None,
            team_id=owner.team_id if owner else None,
            custom_values={k: v for k, v in custom.items() if v is not None},
            last_follow_up_at=follow_up,
            stage_entered_at=created + timedelta(days=rng.uniform(0, 3)),
            created_at=created,
            updated_at=created,
        )
        session.add(customer)
        session.flush()
        for tag in rng.sample(TAGS, rng.randint(0, 2)):
            session.add(CustomerTag(customer_id=customer.id, tag=tag))
    session.commit()
    return rng


def _value(fact, rng):
    if fact.kind is Kind.NUMBER:
        return rng.choice([0, 3, 50, 100, 4999.5, 5000, 50000.5])
    if fact.kind is Kind.BOOL:
        return rng.choice([True, False])
    if fact.kind is Kind.DAYS:
        return rng.choice([0, 1, 7, 30, 45.5])
    if fact.kind is Kind.DATE:
        return rng.choice(["2025-01-01", "2026-01-01", "2026-03-01"])
    if fact.kind is Kind.SET:
        return rng.choice(TAGS)
    if fact.choices:
        return rng.choice(fact.choices)
    return rng.choice(["湘", "长沙", "Tile", "tile", "株洲", "厂"])


def _leaf(facts, rng):
    fact = rng.choice([f for f in facts.values() if f.context is Context.CUSTOMER])
    op = rng.choice(sorted(conditions.OPS_BY_KIND[fact.kind] - {"matches"}))
    if op in ("is_empty", "not_empty"):
        return {"fact": fact.name, "op": op}
    if op in ("in", "not_in"):
        return {"fact": fact.name, "op": op, "value": [_value(fact, rng) for _ in range(2)]}
    return {"fact": fact.name, "op": op, "value": _value(fact, rng)}


def _condition(facts, rng, depth=0):
    roll = rng.random()
    if depth >= 3 or roll < 0.4:
        return _leaf(facts, rng)
    if roll < 0.55:
        return {"not": _condition(facts, rng, depth + 1)}
    key = "all" if roll < 0.8 else "any"
    return {key: [_condition(facts, rng, depth + 1) for _ in range(rng.randint(1, 3))]}


def test_sql_and_python_readings_agree_on_random_conditions(population, session, clock):
    rng = population
    facts = registry(session)
    customers = session.scalars(select(Customer).order_by(Customer.id)).all()
    subjects = {c.id: grading.subject_of(session, c, clock()) for c in customers}
    matched_any = 0
    for _ in range(150):
        condition = _condition(facts, rng)
        assert conditions.check(condition, facts=facts, path="when", where="随机") == []
        compiled = conditions.compile_sql(condition, facts, clock())
        assert compiled is not None, condition
        by_sql = set(session.scalars(select(Customer.id).where(compiled)))
        by_python = {
            cid
            for cid, subject in subjects.items()
            if conditions.evaluate(condition, facts, subject)
        }
        assert by_sql == by_python, condition
        matched_any += 0 < len(by_sql) < len(customers)
    assert matched_any > 50  # the conditions really split the population


def test_bulk_regrade_and_single_customer_grading_agree(population, session, clock):
    rng = population
    facts = registry(session)
    document = {
        "rules": [
            {"name": f"规则{n}", "when": _condition(facts, rng), "grade": grade}
            for n, grade in enumerate(["A", "B", "C"])
        ],
        "default": "D",
    }
    rules = grading.Grading.of(session, document)
    expected = {
        c.id: rules.decide(grading.subject_of(session, c, clock()))[0]
        for c in session.scalars(select(Customer))
    }
    grading.regrade_all(
        session, grading=rules, now=clock(), actor=None, reason="测试", scope=true()
    )
    assert dict(session.execute(select(Customer.id, Customer.grade)).all()) == expected


def test_a_python_only_condition_grades_the_same_in_batches(population, session, clock):
    """A regular expression has no portable SQL reading: the publish falls back to Python."""
    document = {
        "rules": [
            {
                "name": "湘字号",
                "when": {
                    "all": [
                        {"fact": "name", "op": "matches", "value": "^(湘|长沙)"},
                        {"fact": "inquiry_count", "op": ">=", "value": 2},
                    ]
                },
                "grade": "A",
            }
        ],
        "default": "C",
    }
    rules = grading.Grading.of(session, document)
    assert rules.sql(clock()) is None
    result = grading.regrade_all(
        session, grading=rules, now=clock(), actor=None, reason="测试", scope=true()
    )
    assert result.evaluated_in == "python"
    rows = session.execute(select(Customer.name, Customer.inquiry_count, Customer.grade)).all()
    for name, inquiries, grade in rows:
        expected = "A" if name.startswith(("湘", "长沙")) and inquiries >= 2 else "C"
        assert grade == expected, name


def test_an_empty_grading_set_clears_every_grade(population, session, clock):
    """No rules and no default: NULL grades, which PostgreSQL must be told the type of."""
    rules = grading.Grading.of(session, {})
    graded = session.scalar(select(func.count()).where(Customer.grade.is_not(None)))
    preview = grading.preview(session, grading=rules, now=clock(), scope=true())
    assert preview.changed == graded > 0
    grading.regrade_all(
        session, grading=rules, now=clock(), actor=None, reason="测试", scope=true()
    )
    assert session.scalars(select(Customer.grade).distinct()).all() == [None]
