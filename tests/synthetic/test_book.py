"""The benchmarks' book: the sizes and the funnel their figures rest on, and rows the product
reads back as it would have written them (seeded with `bench.seed`, on a SQLite file)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from bench import seed
from crm import completeness
from crm.vocab import Stage
from models import Attachment, Customer, Database, FollowUp, User
from models.users import Role
from synthetic.book import STAGE_WEIGHTS, BookShape, book_org, plan_book

SHAPE = BookShape(customers=4000, follow_ups=40_000, teams=3, reps_per_team=4)


def _plan(shape, clock):
    return [c for chunk in plan_book(shape, book_org(shape), now=clock()) for c in chunk]


def test_the_book_plans_exactly_the_follow_ups_asked_for_over_the_benchmarks_funnel(clock):
    plans = _plan(SHAPE, clock)
    assert len(plans) == SHAPE.customers
    assert sum(len(p.follow_ups) for p in plans) == SHAPE.follow_ups
    stages = Counter(p.stage for p in plans)
    total = sum(STAGE_WEIGHTS.values())
    for stage, weight in STAGE_WEIGHTS.items():
        assert abs(stages[stage] / len(plans) - weight / total) < 0.03, stage
    pooled = [p for p in plans if p.owner is None]
    assert 0.005 < len(pooled) / len(plans) < 0.04
    org = book_org(SHAPE)
    assert {p.owner for p in plans} - {None} == {r.userid for r in org.reps}
    # Key accounts: a few customers carry far more than the average.
    assert max(len(p.follow_ups) for p in plans) > 5 * SHAPE.follow_ups / SHAPE.customers
    assert [p.values for p in _plan(SHAPE, clock)[:50]] == [p.values for p in plans[:50]]


def test_the_seeded_book_reads_back_as_the_product_would_have_written_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'book.sqlite3'}"
    plan = seed.SeedPlan(customers=600, follow_ups=6000, teams=2, reps_per_team=3)
    seeded = seed.ensure_seeded(url, plan, log=lambda _line: None)
    assert not seeded.reused
    assert seeded.row_counts["customers"] == 600 and seeded.row_counts["follow_ups"] == 6000
    db = Database(url)
    try:
        with db.session() as session:
            roles = Counter(u.role for u in session.scalars(select(User)))
            assert roles == {Role.BOSS: 1, Role.MANAGER: 2, Role.REP: 6}
            keys = completeness.required_custom_keys(session)
            assert keys == ["industry"]
            last = dict(
                session.execute(
                    select(FollowUp.customer_id, func.max(FollowUp.happened_at)).group_by(
                        FollowUp.customer_id
                    )
                ).all()
            )
            for customer in session.scalars(select(Customer)):
                assert customer.completeness == completeness.score(customer, keys)
                assert customer.last_follow_up_at == last.get(customer.id)
                assert customer.stage in set(Stage)
            orphans = session.scalar(
                select(func.count())
                .select_from(Attachment)
                .where(~Attachment.follow_up_id.in_(select(FollowUp.id)))
            )
            assert orphans == 0
    finally:
        db.dispose()
    assert seed.ensure_seeded(url, plan, log=lambda _line: None).reused
