"""Customer import: each row is created, merged, skipped or reported; none is dropped silently."""

import csv
import io
import re
from decimal import Decimal

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from crm import custom_fields
from crm.actors import Actor
from crm.errors import Invalid
from crm.imports import ImportFileError, import_customers
from models import Customer, User
from tests.factories import make_company, make_customer

HEADERS = [
    "客户名称",
    "电话",
    "区域",
    "分类",
    "阶段",
    "来源",
    "预计金额",
    "负责人",
    "标签",
    "是否需要安装",
]
CJK = re.compile(r"[\u4e00-\u9fff]")
OWNER_HINT = "请填写你可分配的成员姓名或企业微信账号（重名时填账号）"


def write_xlsx(path, rows):
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def write_csv(path, rows, encoding):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)  # \r\n line ends, as Excel writes them
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def define_install_field(session, boss, clock):
    custom_fields.define_field(
        session,
        actor=Actor.of(boss),
        key="needs_install",
        label="是否需要安装",
        kind="bool",
        options=[],
        is_required=False,
        is_tag_dimension=True,
        now=clock(),
    )
    session.commit()


def run(session, user, path, clock, on_duplicate="skip"):
    """Import as `user` and commit, checking that every row was accounted for."""
    result = import_customers(
        session, actor=Actor.of(user), path=path, on_duplicate=on_duplicate, now=clock()
    )
    session.commit()
    assert_counts_add_up(result)
    return result


def customers_by_phone(session):
    return {
        c.phone: c for c in session.scalars(select(Customer).options(selectinload(Customer.tags)))
    }


def report_by_row(result):
    return {line["row"]: line for line in result.report}


def assert_counts_add_up(result):
    assert result.created + result.merged + result.skipped + result.errors == result.total_rows
    assert len({line["row"] for line in result.report}) == result.total_rows - result.created


# --- one file, good and bad rows ---------------------------------------------------------------


def test_bad_rows_are_reported_by_row_column_and_reason_and_good_rows_are_imported(
    session, clock, tmp_path
):
    company = make_company(session)
    manager = company.managers[0]
    define_install_field(session, company.boss, clock)
    path = write_xlsx(
        tmp_path / "客户.xlsx",
        [
            HEADERS,
            [
                "佛山陶瓷厂",
                "138-0013-8000",
                "长沙县",
                "工程客户",
                "意向",
                "展会获取",
                120000,
                "销售00",
                "大客户、回头客",
                "是",
            ],
            ["坏电话", "12345", "浏阳", "工程客户", "潜在", "线上广告", None, "销售00", None, None],
            ["坏分类", "13900139000", "浏阳", "大客户", None, None, None, None, None, None],
            [None, "13700137000", "宁乡", "零售客户", None, None, None, None, None, None],
            [
                "坏负责人",
                "13600136000",
                "宁乡",
                "零售客户",
                None,
                None,
                None,
                "不存在的人",
                None,
                None,
            ],
            ["坏自定义", "13500135000", "宁乡", "零售客户", None, None, None, None, None, "也许"],
            [
                "李女士",
                "0731-88888888",
                None,
                "零售客户",
                None,
                "门店到访",
                "8,000",
                "rep01",
                None,
                "否",
            ],
        ],
    )

    result = run(session, manager, path, clock)

    assert (result.total_rows, result.created, result.errors) == (7, 2, 5)
    errors = {row: (line["field"], line["message"]) for row, line in report_by_row(result).items()}
    assert errors.keys() == {3, 4, 5, 6, 7}
    assert errors[3] == ("电话", "电话号码格式不正确：12345")
    assert errors[4] == ("分类", "「客户分类」只能是：工程客户、零售客户")
    assert errors[5] == ("客户名称", "「客户名称」不能为空")
    assert errors[6][0] == "负责人" and "不存在的人" in errors[6][1]
    assert errors[7] == ("是否需要安装", "「是否需要安装」应为是或否")
    assert all(line["outcome"] == "error" for line in result.report)
    assert all(CJK.search(message) for _, message in errors.values())

    rows = customers_by_phone(session)
    assert rows.keys() == {"13800138000", "073188888888"}
    factory = rows["13800138000"]
    assert (factory.name, factory.region, factory.category, factory.stage, factory.source) == (
        "佛山陶瓷厂",
        "长沙县",
        "工程客户",
        "意向",
        "展会获取",
    )
    assert factory.expected_amount == Decimal("120000.00")
    assert factory.owner_id == company.reps[0][0].id
    assert factory.team_id == company.teams[0].id
    assert sorted(t.tag for t in factory.tags) == ["回头客", "大客户"]
    assert factory.custom_values == {"needs_install": True}
    shop = rows["073188888888"]
    assert shop.owner_id == company.reps[0][1].id  # 负责人 by WeCom userid works too
    assert shop.expected_amount == Decimal("8000.00")
    assert shop.custom_values == {"needs_install": False}


def test_blank_rows_are_passed_over_without_shifting_the_reported_row_numbers(
    session, clock, tmp_path
):
    rep = make_company(session).reps[0][0]
    path = write_xlsx(
        tmp_path / "gaps.xlsx",
        [
            ["客户名称", "电话"],
            ["张先生", "13800138000"],
            [None, None],
            ["", "   "],
            ["李先生", "not a phone"],
        ],
    )

    result = run(session, rep, path, clock)

    assert (result.total_rows, result.created, result.errors) == (2, 1, 1)
    assert [(line["row"], line["field"]) for line in result.report] == [(5, "电话")]


def test_cells_excel_typed_as_numbers_or_dates_import_as_text(session, clock, tmp_path):
    rep = make_company(session).reps[0][0]
    path = write_xlsx(
        tmp_path / "typed.xlsx",
        [
            ["客户名称", "电话", "公司", "预计金额", "询价次数"],
            [1001, 13800138000, 2026, 50000.5, 3.0],
        ],
    )

    result = run(session, rep, path, clock)

    assert result.errors == 0, result.report
    customer = session.scalar(select(Customer))
    assert (customer.name, customer.phone, customer.company) == ("1001", "13800138000", "2026")
    assert (customer.expected_amount, customer.inquiry_count) == (Decimal("50000.50"), 3)


def test_text_longer_than_its_column_is_a_row_error_not_a_failed_import(session, clock, tmp_path):
    rep = make_company(session).reps[0][0]
    path = write_xlsx(
        tmp_path / "long.xlsx",
        [
            ["客户名称", "区域"],
            ["张先生", "长" * 65],
            ["李先生", "长沙县"],
        ],
    )

    result = run(session, rep, path, clock)

    assert (result.created, result.errors) == (1, 1)
    assert result.report[0]["row"] == 2 and result.report[0]["field"] == "区域"


def test_emails_are_imported_and_a_malformed_one_is_a_row_error(session, clock, tmp_path):
    rep = make_company(session).reps[0][0]
    path = write_xlsx(
        tmp_path / "emails.xlsx",
        [
            ["客户名称", "电子邮箱"],
            ["张先生", "Zhang@Example.COM"],
            ["李先生", "不是邮箱"],
        ],
    )

    result = run(session, rep, path, clock)

    assert (result.created, result.errors) == (1, 1)
    assert result.report[0]["row"] == 3 and result.report[0]["field"] == "电子邮箱"
    assert session.scalar(select(Customer.email)) == "Zhang@example.com"


# --- CSV as people save it ---------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk"])
def test_csv_saved_by_excel_as_utf8_with_bom_or_gbk_is_read(session, clock, tmp_path, encoding):
    rep = make_company(session).reps[0][0]
    path = write_csv(
        tmp_path / "客户.csv",
        [
            ["客户名称", "电话", "区域", "分类", "有预算", "标签"],
            ["佛山陶瓷厂", "13800138000", "长沙县", "工程客户", "是", "瓷砖，卫浴"],
            ["株洲建材", "+86 139 0013 9000", "株洲", "零售客户", "否", ""],
        ],
        encoding,
    )

    result = run(session, rep, path, clock)

    assert (result.total_rows, result.created, result.errors) == (2, 2, 0), result.report
    rows = customers_by_phone(session)
    factory = rows["13800138000"]
    assert (factory.name, factory.region, factory.has_budget) == ("佛山陶瓷厂", "长沙县", True)
    assert sorted(t.tag for t in factory.tags) == ["卫浴", "瓷砖"]
    assert rows["13900139000"].name == "株洲建材"


# --- duplicates --------------------------------------------------------------------------------


def test_a_phone_already_in_the_book_is_skipped_and_reported(session, clock, tmp_path):
    rep = make_company(session).reps[0][0]
    existing = make_customer(session, rep, clock(), name="老客户", phone="13800138000")
    path = write_xlsx(
        tmp_path / "dup.xlsx",
        [
            ["客户名称", "电话", "区域"],
            ["新名字", "+86 138-0013-8000", "浏阳"],
        ],
    )

    result = run(session, rep, path, clock, on_duplicate="skip")

    assert (result.created, result.skipped) == (0, 1)
    line = result.report[0]
    assert (line["row"], line["outcome"], line["customer_id"], line["field"]) == (
        2,
        "skipped",
        existing.id,
        "phone",
    )
    session.refresh(existing)
    assert (existing.name, existing.region) == ("老客户", None)
    assert session.scalar(select(func.count()).select_from(Customer)) == 1


def test_a_phone_already_in_the_book_is_merged_when_asked(session, clock, tmp_path):
    rep = make_company(session).reps[0][0]
    existing = make_customer(session, rep, clock(), name="老客户", phone="13800138000")
    path = write_xlsx(
        tmp_path / "dup.xlsx",
        [
            ["客户名称", "电话", "区域", "来源"],
            ["老客户", "13800138000", "浏阳", "展会获取"],
        ],
    )

    result = run(session, rep, path, clock, on_duplicate="merge")

    assert (result.created, result.merged) == (0, 1)
    assert result.report[0]["customer_id"] == existing.id
    session.refresh(existing)
    assert (existing.region, existing.source) == ("浏阳", "展会获取")
    assert session.scalar(select(func.count()).select_from(Customer)) == 1


def test_a_phone_repeated_inside_the_file_is_skipped_after_its_first_row(session, clock, tmp_path):
    rep = make_company(session).reps[0][0]
    path = write_xlsx(
        tmp_path / "twice.xlsx",
        [
            ["客户名称", "电话", "区域"],
            ["张先生", "13800138000", "浏阳"],
            ["张先生（重复）", "138 0013 8000", "宁乡"],
        ],
    )

    result = run(session, rep, path, clock, on_duplicate="skip")

    assert (result.created, result.skipped) == (1, 1)
    only = session.scalar(select(Customer))
    assert (only.name, only.region) == ("张先生", "浏阳")
    assert result.report == [
        {
            "row": 3,
            "outcome": "skipped",
            "customer_id": only.id,
            "field": "phone",
            "message": "电话 13800138000 已存在，已跳过",
        }
    ]


def test_a_phone_repeated_inside_the_file_merges_into_its_first_row(session, clock, tmp_path):
    rep = make_company(session).reps[0][0]
    path = write_xlsx(
        tmp_path / "twice.xlsx",
        [
            ["客户名称", "电话", "区域", "公司"],
            ["张先生", "13800138000", "浏阳", None],
            ["张先生", "138 0013 8000", "宁乡", "张氏建材"],
        ],
    )

    result = run(session, rep, path, clock, on_duplicate="merge")

    assert (result.created, result.merged) == (1, 1)
    only = session.scalar(select(Customer))
    assert (only.region, only.company) == ("宁乡", "张氏建材")


def test_a_reps_import_cannot_merge_into_another_reps_customer(session, clock, tmp_path):
    company = make_company(session)
    rep, colleague = company.reps[0]
    theirs = make_customer(session, colleague, clock(), name="同事的客户", phone="13800138000")
    path = write_xlsx(
        tmp_path / "steal.xlsx",
        [
            ["客户名称", "电话", "区域"],
            ["我的客户", "13800138000", "浏阳"],
        ],
    )

    result = run(session, rep, path, clock, on_duplicate="merge")

    assert (result.merged, result.errors) == (0, 1)
    line = result.report[0]
    assert (line["row"], line["outcome"], line["field"]) == (2, "error", "电话")
    assert "其他销售" in line["message"]
    assert "customer_id" not in line
    session.refresh(theirs)
    assert (theirs.name, theirs.region, theirs.owner_id) == ("同事的客户", None, colleague.id)


def test_skipping_another_reps_customer_does_not_reveal_its_id(session, clock, tmp_path):
    company = make_company(session)
    rep, colleague = company.reps[0]
    make_customer(session, colleague, clock(), phone="13800138000")
    path = write_xlsx(tmp_path / "peek.xlsx", [["客户名称", "电话"], ["我的客户", "13800138000"]])

    result = run(session, rep, path, clock, on_duplicate="skip")

    assert result.skipped == 1
    assert result.report[0].get("customer_id") is None
    assert "其他销售" in result.report[0]["message"]


# --- files refused as a whole ------------------------------------------------------------------


def test_a_file_without_a_customer_name_column_is_refused_whole(session, clock, tmp_path):
    rep = make_company(session).reps[0][0]
    path = write_xlsx(tmp_path / "noname.xlsx", [["电话", "区域"], ["13800138000", "浏阳"]])

    with pytest.raises(ImportFileError) as caught:
        import_customers(session, actor=Actor.of(rep), path=path, on_duplicate="skip", now=clock())

    assert caught.value.message == "缺少「客户名称」列"
    assert caught.value.field == "file"
    assert session.scalar(select(func.count()).select_from(Customer)) == 0


@pytest.mark.parametrize(
    ("name", "content"),
    [("empty.csv", b""), ("blank.csv", b"\r\n , \r\n"), ("bom.csv", "\ufeff".encode())],
)
def test_an_empty_csv_is_refused(session, clock, tmp_path, name, content):
    rep = make_company(session).reps[0][0]
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(ImportFileError) as caught:
        import_customers(session, actor=Actor.of(rep), path=path, on_duplicate="skip", now=clock())
    assert caught.value.message == "文件是空的"


def test_an_empty_workbook_is_refused(session, clock, tmp_path):
    rep = make_company(session).reps[0][0]
    path = write_xlsx(tmp_path / "empty.xlsx", [])

    with pytest.raises(ImportFileError) as caught:
        import_customers(session, actor=Actor.of(rep), path=path, on_duplicate="skip", now=clock())
    assert caught.value.message == "文件是空的"


@pytest.mark.parametrize(
    ("name", "content"), [("list.txt", b"a,b"), ("broken.xlsx", b"PK\x03\x04 not a zip")]
)
def test_a_file_that_is_not_a_readable_spreadsheet_is_refused(
    session, clock, tmp_path, name, content
):
    rep = make_company(session).reps[0][0]
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(ImportFileError) as caught:
        import_customers(session, actor=Actor.of(rep), path=path, on_duplicate="skip", now=clock())
    assert caught.value.code == "bad_import_file"


def test_an_unknown_duplicate_policy_is_refused(session, clock, tmp_path):
    rep = make_company(session).reps[0][0]
    path = write_xlsx(tmp_path / "a.xlsx", [["客户名称"], ["张先生"]])
    with pytest.raises(Invalid) as caught:
        import_customers(
            session, actor=Actor.of(rep), path=path, on_duplicate="overwrite", now=clock()
        )
    assert caught.value.field == "on_duplicate"


def test_unknown_and_repeated_columns_are_listed_as_ignored(session, clock, tmp_path):
    rep = make_company(session).reps[0][0]
    path = write_xlsx(
        tmp_path / "extra.xlsx",
        [
            ["客户名称 *", "手机号", "微信号", "备注2", "电话", None],
            ["张先生", "13800138000", "zhang_wx", "老客户", "13900139000", None],
        ],
    )

    result = run(session, rep, path, clock)

    assert result.ignored_columns == ["微信号", "备注2", "电话"]
    assert session.scalar(select(Customer.phone)) == "13800138000"  # the first phone column


# --- who owns what was imported ----------------------------------------------------------------


def test_a_reps_imported_customers_are_the_reps_own(session, clock, tmp_path):
    company = make_company(session)
    rep, colleague = company.reps[0]
    path = write_xlsx(
        tmp_path / "mine.xlsx",
        [
            ["客户名称", "电话", "负责人", "等级"],
            ["张先生", "13800138000", None, "A"],
            ["李先生", "13900139000", rep.name, None],
            ["王先生", "13700137000", colleague.wecom_userid, None],
        ],
    )

    result = run(session, rep, path, clock)

    assert (result.created, result.errors) == (2, 1)
    assert (result.report[0]["row"], result.report[0]["field"]) == (4, "负责人")
    owned = session.execute(select(Customer.owner_id, Customer.team_id, Customer.grade)).all()
    assert owned == [(rep.id, rep.team_id, "C")] * 2  # the rules grade, not the rep's "A"


def test_a_managers_owner_column_assigns_within_the_team_only(session, clock, tmp_path):
    company = make_company(session)
    manager = company.managers[0]
    own_rep, other_team_rep = company.reps[0][0], company.reps[1][0]
    path = write_xlsx(
        tmp_path / "team.xlsx",
        [
            ["客户名称", "电话", "负责人"],
            ["张先生", "13800138000", own_rep.name],
            ["李先生", "13900139000", other_team_rep.name],
            ["王先生", "13700137000", other_team_rep.wecom_userid],
            ["赵先生", "13600136000", company.boss.wecom_userid],
        ],
    )

    result = run(session, manager, path, clock)

    assert (result.created, result.errors) == (1, 3)
    assert [(line["row"], line["field"]) for line in result.report] == [
        (3, "负责人"),
        (4, "负责人"),
        (5, "负责人"),
    ]
    assert session.execute(select(Customer.owner_id, Customer.team_id)).all() == [
        (own_rep.id, company.teams[0].id)
    ]


def test_an_owner_name_two_people_share_must_be_given_as_a_userid(session, clock, tmp_path):
    company = make_company(session)
    first, second = company.reps[0]
    second.name = first.name
    session.commit()
    path = write_xlsx(
        tmp_path / "same.xlsx",
        [
            ["客户名称", "电话", "负责人"],
            ["张先生", "13800138000", first.name],
            ["李先生", "13900139000", second.wecom_userid],
        ],
    )

    result = run(session, company.managers[0], path, clock)

    assert (result.created, result.errors) == (1, 1)
    assert result.report[0]["row"] == 2 and "重名" in result.report[0]["message"]
    assert session.scalar(select(Customer.owner_id)) == second.id


def test_an_owner_who_left_cannot_be_given_customers(session, clock, tmp_path):
    company = make_company(session)
    gone = company.reps[0][0]
    session.get(User, gone.id).is_active = False
    session.commit()
    path = write_xlsx(tmp_path / "left.xlsx", [["客户名称", "负责人"], ["张先生", gone.name]])

    result = run(session, company.managers[0], path, clock)

    assert (result.created, result.errors) == (0, 1)
    assert result.report[0]["field"] == "负责人"


# --- every problem of a row --------------------------------------------------------------------


def test_a_row_with_five_problems_reports_all_five_and_the_other_rows_still_import(
    session, clock, tmp_path
):
    company = make_company(session)
    manager = company.managers[0]
    define_install_field(session, company.boss, clock)
    path = write_xlsx(
        tmp_path / "five.xlsx",
        [
            ["客户名称", "电话", "客户分类", "预计金额", "有明确预算", "负责人", "是否需要安装"],
            ["张先生", "13800138000", "工程客户", 5000, "√", None, "√"],
            [None, "12345", "批发客户", "五千", "也许", "不存在的人", "×"],
            ["李先生", "13900139000", "零售客户", None, "×", None, "也许"],
            ["王先生", "13700137000", None, "1,200", "有", None, None],
        ],
    )

    result = run(session, manager, path, clock)

    assert (result.total_rows, result.created, result.errors) == (4, 2, 2)
    assert [(line["row"], line["field"], line["message"]) for line in result.report] == [
        (3, "客户名称", "「客户名称」不能为空"),
        (3, "电话", "电话号码格式不正确：12345"),
        (3, "客户分类", "「客户分类」只能是：工程客户、零售客户"),
        (3, "预计金额", "「预计金额」应为数字"),
        (3, "有明确预算", "「有明确预算」应为是或否"),
        (3, "负责人", f"找不到负责人「不存在的人」：{OWNER_HINT}"),
        (4, "是否需要安装", "「是否需要安装」应为是或否"),
    ]
    assert {line["outcome"] for line in result.report} == {"error"}
    rows = customers_by_phone(session)
    assert rows.keys() == {"13800138000", "13700137000"}
    assert (rows["13800138000"].has_budget, rows["13800138000"].custom_values) == (
        True,
        {"needs_install": True},
    )
    assert (rows["13700137000"].expected_amount, rows["13700137000"].has_budget) == (
        Decimal("1200.00"),
        True,
    )


def test_a_row_refused_for_its_cells_leaves_the_customer_it_would_merge_into_alone(
    session, clock, tmp_path
):
    rep = make_company(session).reps[0][0]
    existing = make_customer(session, rep, clock(), name="老客户", phone="13800138000")
    path = write_xlsx(
        tmp_path / "merge.xlsx",
        [["客户名称", "电话", "所属区域", "询价次数"], ["老客户", "13800138000", "浏阳", "很多"]],
    )

    result = run(session, rep, path, clock, on_duplicate="merge")

    assert (result.merged, result.errors) == (0, 1)
    assert [(line["field"], line["message"]) for line in result.report] == [
        ("询价次数", "「累计询价次数」应为整数")
    ]
    session.refresh(existing)
    assert existing.region is None
