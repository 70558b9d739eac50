"""Data completeness (资料完整度): the share of required base and custom fields that are filled."""

from decimal import Decimal

from sqlalchemy import select

from crm import completeness
from crm.completeness import REQUIRED_BASE_FIELDS, missing_fields, score
from models import Customer, CustomField
from tests.factories import make_company, make_customer

FULL = dict(
    name="佛山陶瓷厂",
    phone="13800138000",
    company="佛山陶瓷有限公司",
    region="长沙县",
    category="工程客户",
    source="展会获取",
    first_contact_method="电话",
    need_match="高",
    expected_amount=Decimal("120000.00"),
)


def customer(custom_values=None, **values):
    return Customer(**{**FULL, **values}, custom_values=custom_values or {})


def test_a_customer_with_every_base_field_is_complete():
    assert missing_fields(customer(), []) == []
    assert score(customer(), []) == 100


def test_each_empty_base_field_is_missing_by_name():
    sparse = customer(company=None, region="", expected_amount=None)
    assert missing_fields(sparse, []) == ["company", "region", "expected_amount"]
    assert score(sparse, []) == round(100 * 6 / 9)


def test_a_zero_amount_is_filled():
    assert "expected_amount" not in missing_fields(customer(expected_amount=Decimal(0)), [])


def test_only_a_name_scores_one_ninth():
    bare = Customer(name="张先生", custom_values={})
    assert missing_fields(bare, []) == list(REQUIRED_BASE_FIELDS[1:])
    assert score(bare, []) == 11


def test_required_custom_fields_count_toward_the_score():
    filled = customer(custom_values={"needs_install": True, "area_m2": 0, "note": ""})
    keys = ["needs_install", "area_m2", "note", "visit_on"]
    assert missing_fields(filled, keys) == ["custom_values.note", "custom_values.visit_on"]
    assert score(filled, keys) == round(100 * 11 / 13)


def test_a_false_custom_value_is_an_answer_not_a_gap():
    answered = customer(custom_values={"has_competitor": False})
    assert missing_fields(answered, ["has_competitor"]) == []
    assert score(answered, ["has_competitor"]) == 100


def test_custom_values_that_are_not_required_do_not_count():
    assert score(customer(custom_values={"note": "x"}), []) == 100


# --- recomputing (database) --------------------------------------------------------------------


def add_field(session, clock, key, *, is_required, is_active=True):
    session.add(
        CustomField(
            key=key,
            label=key,
            kind="text",
            options=[],
            is_required=is_required,
            is_tag_dimension=False,
            is_active=is_active,
            created_at=clock(),
        )
    )
    session.commit()


def test_recompute_rescores_every_customer_after_a_field_becomes_required(session, clock):
    rep = make_company(session).reps[0][0]
    full = make_customer(session, rep, clock(), **FULL)
    answered = make_customer(
        session, rep, clock(), **{**FULL, "phone": "13900139000"}, custom_values={}
    )
    assert (full.completeness, answered.completeness) == (100, 100)
    add_field(session, clock, "install", is_required=True)
    add_field(session, clock, "retired", is_required=True, is_active=False)
    add_field(session, clock, "optional", is_required=False)
    session.get(Customer, answered.id).custom_values = {"install": "要"}
    session.commit()

    assert completeness.required_custom_keys(session) == ["install"]
    assert completeness.recompute_all(session) == 1
    session.commit()
    scores = dict(session.execute(select(Customer.id, Customer.completeness)).all())
    assert scores == {full.id: round(100 * 9 / 10), answered.id: 100}
    assert completeness.recompute_all(session) == 0  # nothing moves twice
