"""/imports: an upload is queued, a real RQ worker imports it, the report is read back."""

import io

import pytest
import rq
from openpyxl import Workbook
from sqlalchemy import select

from models import Customer, ImportJob
from tests.factories import make_company, make_customer, sign_in
from workers import queues


def xlsx(rows) -> bytes:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def upload(client, headers, data: bytes, filename: str, **form):
    return client.post(
        "/api/v1/imports",
        headers=headers,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(data), filename), **form},
    )


def run_worker(runtime) -> None:
    worker_queues = [queues.queue(runtime.redis, name) for name in queues.ALL_QUEUES]
    rq.SimpleWorker(worker_queues, connection=runtime.redis).work(burst=True)


def assert_envelope(response, status, code, field=None):
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code
    assert response.json["error"]["message"]
    assert response.json["error"]["field"] == field


def test_an_uploaded_file_is_imported_by_the_worker_and_its_report_read_back(
    client, session, fake_wecom, runtime
):
    company = make_company(session)
    rep = company.reps[0][0]
    headers = sign_in(client, fake_wecom, rep)
    data = xlsx(
        [
            ["客户名称", "电话", "区域"],
            ["佛山陶瓷厂", "13800138000", "长沙县"],
            ["坏电话", "12345", "浏阳"],
            ["株洲建材", "139-0013-9000", "株洲"],
        ]
    )

    queued = upload(client, headers, data, "客户名单.xlsx", on_duplicate="merge")

    assert queued.status_code == 202, queued.json
    assert queued.json["status"] == "queued"
    assert (queued.json["filename"], queued.json["on_duplicate"]) == ("客户名单.xlsx", "merge")
    assert session.scalar(select(Customer.id)) is None  # nothing lands before the worker runs

    run_worker(runtime)
    session.rollback()  # end the read snapshot taken above, to see the worker's rows

    done = client.get(f"/api/v1/imports/{queued.json['id']}", headers=headers)
    assert done.status_code == 200, done.json
    body = done.json
    assert body["status"] == "done"
    assert body["finished_at"] is not None
    assert (body["total_rows"], body["processed_rows"]) == (3, 3)
    assert (
        body["created_count"],
        body["merged_count"],
        body["skipped_count"],
        body["error_count"],
    ) == (2, 0, 0, 1)
    assert body["report"] == [
        {
            "row": 3,
            "outcome": "error",
            "customer_id": None,
            "field": "电话",
            "message": "电话号码格式不正确：12345",
        }
    ]
    owners = session.execute(select(Customer.phone, Customer.owner_id)).all()
    assert sorted(owners) == [("13800138000", rep.id), ("13900139000", rep.id)]


def test_the_report_names_every_problem_of_a_refused_row(client, session, fake_wecom, runtime):
    rep = make_company(session).reps[0][0]
    headers = sign_in(client, fake_wecom, rep)
    data = xlsx(
        [
            ["客户名称", "电话", "来源", "预计金额"],
            [None, "12345", "朋友圈", -5],
            ["株洲建材", "139-0013-9000", "展会获取", 8000],
        ]
    )

    queued = upload(client, headers, data, "bad.xlsx")
    run_worker(runtime)

    body = client.get(f"/api/v1/imports/{queued.json['id']}", headers=headers).json
    assert (body["created_count"], body["error_count"]) == (1, 1)
    assert [(line["row"], line["outcome"], line["field"]) for line in body["report"]] == [
        (2, "error", "客户名称"),
        (2, "error", "电话"),
        (2, "error", "来源"),
        (2, "error", "预计金额"),
    ]
    assert all(line["message"] for line in body["report"])
    session.rollback()
    assert session.scalar(select(Customer.name)) == "株洲建材"


def test_a_merge_upload_updates_the_existing_customer(client, session, fake_wecom, runtime, clock):
    rep = make_company(session).reps[0][0]
    existing = make_customer(session, rep, clock(), name="老客户", phone="13800138000")
    headers = sign_in(client, fake_wecom, rep)
    data = xlsx([["客户名称", "电话", "区域"], ["老客户", "13800138000", "浏阳"]])

    queued = upload(client, headers, data, "merge.xlsx", on_duplicate="merge")
    run_worker(runtime)

    body = client.get(f"/api/v1/imports/{queued.json['id']}", headers=headers).json
    assert (body["merged_count"], body["report"][0]["customer_id"]) == (1, existing.id)
    assert session.scalar(select(Customer.region).where(Customer.id == existing.id)) == "浏阳"


def test_a_file_refused_as_a_whole_fails_the_job_with_the_reason(
    client, session, fake_wecom, runtime
):
    rep = make_company(session).reps[0][0]
    headers = sign_in(client, fake_wecom, rep)

    queued = upload(client, headers, xlsx([["电话"], ["13800138000"]]), "noname.xlsx")
    run_worker(runtime)

    body = client.get(f"/api/v1/imports/{queued.json['id']}", headers=headers).json
    assert body["status"] == "failed"
    assert body["error_count"] == 1
    assert body["report"][0]["message"] == "缺少「客户名称」列"
    assert session.scalar(select(Customer.id)) is None


def test_another_rep_cannot_see_someone_elses_import(client, session, fake_wecom, runtime):
    company = make_company(session)
    owner, other = company.reps[0]
    queued = upload(
        client, sign_in(client, fake_wecom, owner), xlsx([["客户名称"], ["张先生"]]), "a.xlsx"
    )
    run_worker(runtime)

    response = client.get(
        f"/api/v1/imports/{queued.json['id']}", headers=sign_in(client, fake_wecom, other)
    )

    assert_envelope(response, 404, "not_found")
    boss_view = client.get(
        f"/api/v1/imports/{queued.json['id']}", headers=sign_in(client, fake_wecom, company.boss)
    )
    assert boss_view.status_code == 200


def test_a_long_file_name_is_shortened_keeping_its_suffix(client, session, fake_wecom):
    headers = sign_in(client, fake_wecom, make_company(session).reps[0][0])

    response = upload(client, headers, xlsx([["客户名称"], ["张先生"]]), "客" * 300 + ".xlsx")

    assert response.status_code == 202, response.json
    assert response.json["filename"] == "客" * 250 + ".xlsx"


def test_an_upload_needs_a_signed_in_user(client, session):
    response = upload(client, {}, xlsx([["客户名称"], ["张先生"]]), "a.xlsx")
    assert_envelope(response, 401, "unauthenticated")


@pytest.mark.parametrize(
    ("files", "code"),
    [
        ({}, "required"),
        ({"file": (io.BytesIO(b"a,b\n"), "customers.txt")}, "bad_import_file"),
        ({"file": (io.BytesIO(b""), "customers.xlsx")}, "bad_import_file"),
        ({"file": (io.BytesIO(b"x"), "")}, "bad_import_file"),
    ],
)
def test_a_bad_upload_is_refused_with_the_error_envelope(
    client, session, fake_wecom, runtime, files, code
):
    headers = sign_in(client, fake_wecom, make_company(session).reps[0][0])

    response = client.post(
        "/api/v1/imports",
        headers=headers,
        content_type="multipart/form-data",
        data={"on_duplicate": "skip", **files},
    )

    assert_envelope(response, 422, code, "file")
    assert session.scalar(select(ImportJob.id)) is None
    assert runtime.redis.llen("rq:queue:imports") == 0


def test_two_files_at_once_are_refused(client, session, fake_wecom):
    headers = sign_in(client, fake_wecom, make_company(session).reps[0][0])
    data = xlsx([["客户名称"], ["张先生"]])

    response = client.post(
        "/api/v1/imports",
        headers=headers,
        content_type="multipart/form-data",
        data={"file": [(io.BytesIO(data), "a.xlsx"), (io.BytesIO(data), "b.xlsx")]},
    )

    assert_envelope(response, 422, "required", "file")


def test_an_unknown_duplicate_policy_is_refused(client, session, fake_wecom):
    headers = sign_in(client, fake_wecom, make_company(session).reps[0][0])

    response = upload(
        client, headers, xlsx([["客户名称"], ["张先生"]]), "a.xlsx", on_duplicate="overwrite"
    )

    assert_envelope(response, 422, "validation_failed", "on_duplicate")


def test_an_upload_that_is_not_multipart_is_refused(client, session, fake_wecom):
    headers = sign_in(client, fake_wecom, make_company(session).reps[0][0])

    response = client.post(
        "/api/v1/imports", headers=headers, data=b"abc", content_type="application/octet-stream"
    )

    assert_envelope(response, 415, "unsupported_media_type")
