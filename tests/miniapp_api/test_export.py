"""GET /customers/export: exactly the caller's customers, in columns the importer reads back."""

import csv
import io
import zipfile
from datetime import UTC, datetime

import pytest
import rq
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from crm import custom_fields, customer_changes
from crm.actors import Actor
from crm.customers import snapshot
from crm.fields import CATALOGUE
from models import AuditEntry, Customer
from tests.factories import make_company, make_customer, sign_in
from workers import queues

# Every catalogue field under its label, then the tags and the owner.
BASE_HEADERS = [f.label for f in CATALOGUE] + ["标签", "负责人"]
FORMULA_NAME = '=HYPERLINK("http://evil.example/","点我领奖")'


def export(client, headers, **params):
    response = client.get("/api/v1/customers/export", headers=headers, query_string=params)
    assert response.status_code == 200, response.json
    return response


def csv_rows(response):
    assert response.data.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    assert response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))


def xlsx_rows(response):
    workbook = load_workbook(io.BytesIO(response.data))
    assert workbook.sheetnames == ["客户"]
    return [[c.value for c in row] for row in workbook["客户"].iter_rows()]


def names(rows):
    return sorted(row[0] for row in rows[1:])


@pytest.fixture
def book(session, clock):
    """Two teams with one customer per rep, and an ownerless one in team 0 (the pool)."""
    company = make_company(session)
    for team in company.reps:
        for rep in team:
            make_customer(session, rep, clock(), name=f"{rep.name}的客户")
    customer_changes.create_customer(
        session, actor=Actor.of(company.managers[0]), values={"name": "公海客户"}, now=clock()
    )
    session.commit()
    return company


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_each_role_exports_exactly_its_scope(client, session, fake_wecom, book, fmt):
    company = book
    read = csv_rows if fmt == "csv" else xlsx_rows

    def exported_names(user):
        return names(read(export(client, sign_in(client, fake_wecom, user), format=fmt)))

    assert exported_names(company.reps[0][0]) == ["销售00的客户"]
    assert exported_names(company.managers[0]) == ["公海客户", "销售00的客户", "销售01的客户"]
    assert exported_names(company.managers[1]) == ["销售10的客户", "销售11的客户"]
    assert exported_names(company.boss) == [
        "公海客户",
        "销售00的客户",
        "销售01的客户",
        "销售10的客户",
        "销售11的客户",
    ]


def test_a_rep_cannot_widen_the_export_by_filtering_on_another_owner(
    client, session, fake_wecom, book
):
    company = book
    rep, colleague = company.reps[0]
    rows = csv_rows(
        export(client, sign_in(client, fake_wecom, rep), format="csv", owner_id=colleague.id)
    )
    assert rows[1:] == []


def test_the_csv_has_chinese_headers_and_one_row_per_customer(client, session, fake_wecom, clock):
    company = make_company(session)
    rep = company.reps[0][0]
    make_customer(
        session,
        rep,
        clock(),
        name="佛山陶瓷厂",
        phone="138-0013-8000",
        company="佛山陶瓷有限公司",
        region="长沙县",
        category="工程客户",
        source="展会获取",
        expected_amount=120000.5,
        has_budget=True,
        tags=["瓷砖", "卫浴"],
    )

    response = export(client, sign_in(client, fake_wecom, rep), format="csv")

    assert (
        response.headers["Content-Disposition"]
        == "attachment; filename=customers-20260302-0130.csv"
    )
    header, row = csv_rows(response)
    assert header == BASE_HEADERS + ["资料完整度", "最近跟进", "创建时间"]
    record = dict(zip(header, row, strict=True))
    assert record["客户名称"] == "佛山陶瓷厂"
    assert record["电话"] == "13800138000"
    assert (record["所属区域"], record["客户分类"], record["客户来源"]) == (
        "长沙县",
        "工程客户",
        "展会获取",
    )
    assert record["预计金额"] == "120000.5"
    assert (record["有明确预算"], record["参加过线下展会"]) == ("是", "否")
    assert sorted(record["标签"].split("、")) == ["卫浴", "瓷砖"]
    assert record["负责人"] == rep.wecom_userid
    assert record["阶段"] == "潜在"


def test_custom_fields_are_exported_as_columns_under_their_labels(
    client, session, fake_wecom, clock
):
    company = make_company(session)
    rep = company.reps[0][0]
    custom_fields.define_field(
        session,
        actor=Actor.of(company.boss),
        key="needs_install",
        label="是否需要安装",
        kind="bool",
        options=[],
        is_required=False,
        is_tag_dimension=True,
        now=clock(),
    )
    session.commit()
    make_customer(session, rep, clock(), name="张先生", custom_values={"needs_install": "是"})

    rows = xlsx_rows(export(client, sign_in(client, fake_wecom, rep), format="xlsx"))

    assert rows[0][len(BASE_HEADERS)] == "是否需要安装"
    assert rows[1][len(BASE_HEADERS)] == "是"


def test_dates_are_exported_in_beijing_time(client, session, fake_wecom, clock):
    rep = make_company(session).reps[0][0]
    late_evening_utc = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)  # 2026-03-02 04:00 in Beijing
    customer = make_customer(session, rep, late_evening_utc, name="张先生")
    session.get(Customer, customer.id).last_follow_up_at = late_evening_utc
    session.commit()

    header, row = csv_rows(export(client, sign_in(client, fake_wecom, rep), format="csv"))

    record = dict(zip(header, row, strict=True))
    assert (record["最近跟进"], record["创建时间"]) == ("2026-03-02 04:00", "2026-03-02")


def test_the_export_honours_the_list_filters(client, session, fake_wecom, clock):
    company = make_company(session)
    manager = company.managers[0]
    custom_fields.define_field(
        session,
        actor=Actor.of(company.boss),
        key="level",
        label="意向强度",
        kind="enum",
        options=["强", "弱"],
        is_required=False,
        is_tag_dimension=True,
        now=clock(),
    )
    session.commit()
    rep, colleague = company.reps[0]
    make_customer(
        session,
        rep,
        clock(),
        name="浏阳意向",
        region="浏阳",
        stage="意向",
        tags=["瓷砖"],
        custom_values={"level": "强"},
    )
    make_customer(
        session, rep, clock(), name="浏阳潜在", region="浏阳", custom_values={"level": "弱"}
    )
    make_customer(
        session,
        colleague,
        clock(),
        name="宁乡意向",
        region="宁乡",
        stage="意向",
        phone="13800138000",
    )
    headers = sign_in(client, fake_wecom, manager)

    def exported(**filters):
        return names(csv_rows(export(client, headers, format="csv", **filters)))

    assert exported(stage="意向") == ["宁乡意向", "浏阳意向"]
    assert exported(stage="意向", region="浏阳") == ["浏阳意向"]
    assert exported(tag="瓷砖") == ["浏阳意向"]
    assert exported(custom="level:弱") == ["浏阳潜在"]
    assert exported(q="0013") == ["宁乡意向"]
    assert exported(owner_id=colleague.id) == ["宁乡意向"]


def test_a_bad_filter_is_refused_with_the_error_envelope(client, session, fake_wecom):
    headers = sign_in(client, fake_wecom, make_company(session).reps[0][0])

    unknown_field = client.get(
        "/api/v1/customers/export", headers=headers, query_string={"custom": "colour:红"}
    )
    bad_format = client.get(
        "/api/v1/customers/export", headers=headers, query_string={"format": "pdf"}
    )

    assert unknown_field.status_code == 422
    assert unknown_field.json["error"]["field"] == "custom"
    assert bad_format.status_code == 422
    assert bad_format.json["error"]["field"] == "format"


def test_a_formula_like_name_is_exported_as_text_not_a_formula(client, session, fake_wecom, clock):
    rep = make_company(session).reps[0][0]
    make_customer(session, rep, clock(), name=FORMULA_NAME, company="@SUM(A1:A9)")
    headers = sign_in(client, fake_wecom, rep)

    xlsx = export(client, headers, format="xlsx")
    workbook = load_workbook(io.BytesIO(xlsx.data))
    name_cell, _, _, company_cell = next(workbook["客户"].iter_rows(min_row=2, max_col=4))
    assert (name_cell.value, name_cell.data_type) == (FORMULA_NAME, "s")
    assert (company_cell.value, company_cell.data_type) == ("@SUM(A1:A9)", "s")
    sheet_xml = zipfile.ZipFile(io.BytesIO(xlsx.data)).read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in sheet_xml

    _, row = csv_rows(export(client, headers, format="csv"))
    assert (row[0], row[3]) == ("'" + FORMULA_NAME, "'@SUM(A1:A9)")


# --- round trip --------------------------------------------------------------------------------


def run_worker(runtime) -> None:
    worker_queues = [queues.queue(runtime.redis, name) for name in queues.ALL_QUEUES]
    rq.SimpleWorker(worker_queues, connection=runtime.redis).work(burst=True)


def book_state(session):
    session.expire_all()
    customers = session.scalars(select(Customer).options(selectinload(Customer.tags)))
    state = {c.id: {**snapshot(c), "updated_at": c.updated_at} for c in customers}
    return state, session.scalar(select(func.count()).select_from(AuditEntry))


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_exported_file_imported_back_with_merge_changes_nothing(
    client, session, fake_wecom, runtime, clock, fmt
):
    company = make_company(session)
    manager = company.managers[0]
    for key, label, kind, options in [
        ("needs_install", "是否需要安装", "bool", []),
        ("area_m2", "厂房面积", "number", []),
        ("visit_on", "拜访日期", "date", []),
        ("level", "意向强度", "enum", ["强", "弱"]),
        ("note", "备注", "text", []),
    ]:
        custom_fields.define_field(
            session,
            actor=Actor.of(company.boss),
            key=key,
            label=label,
            kind=kind,
            options=options,
            is_required=False,
            is_tag_dimension=False,
            now=clock(),
        )
    session.commit()
    rep, colleague = company.reps[0]
    make_customer(
        session,
        rep,
        clock(),
        name="佛山陶瓷厂",
        phone="13800138000",
        company="佛山陶瓷有限公司",
        region="长沙县",
        category="工程客户",
        source="展会获取",
        first_contact_method="拜访",
        need_match="高",
        quote_feedback="嫌贵，\n要再比一比",
        expected_amount=120000.55,
        inquiry_count=3,
        has_budget=True,
        attended_expo=True,
        stage="意向",
        tags=["瓷砖", "卫浴"],
        custom_values={
            "needs_install": True,
            "area_m2": 5000.5,
            "visit_on": "2026-03-01",
            "level": "强",
            "note": "-老客户介绍",
        },
    )
    make_customer(
        session,
        colleague,
        clock(),
        name=FORMULA_NAME,
        phone="0731-88888888",
        custom_values={"needs_install": False, "area_m2": 12},
    )
    make_customer(session, company.reps[1][0], clock(), name="别的团队", phone="13900139000")
    headers = sign_in(client, fake_wecom, manager)
    before = book_state(session)

    exported = export(client, headers, format=fmt)
    clock.advance(hours=1)
    queued = client.post(
        "/api/v1/imports",
        headers=headers,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(exported.data), f"export.{fmt}"), "on_duplicate": "merge"},
    )
    assert queued.status_code == 202, queued.json
    run_worker(runtime)

    report = client.get(f"/api/v1/imports/{queued.json['id']}", headers=headers).json
    assert report["status"] == "done"
    assert (
        report["total_rows"],
        report["merged_count"],
        report["created_count"],
        report["error_count"],
    ) == (2, 2, 0, 0), report["report"]
    assert book_state(session) == before
