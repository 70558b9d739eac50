"""/custom-fields: the boss adds fields live; every write validates them; lists filter by them."""

import pytest
import rq

from tests.factories import make_company, make_customer, sign_in
from workers import queues

FULL = dict(
    phone="13800138000",
    company="佛山陶瓷有限公司",
    region="长沙县",
    category="工程客户",
    source="展会获取",
    first_contact_method="电话",
    need_match="高",
    expected_amount=1000,
)


def run_worker(runtime) -> None:
    worker_queues = [queues.queue(runtime.redis, name) for name in queues.ALL_QUEUES]
    rq.SimpleWorker(worker_queues, connection=runtime.redis).work(burst=True)


def add_field(client, headers, **body):
    body.setdefault("label", body["key"])
    return client.post("/api/v1/custom-fields", headers=headers, json=body)


def detail(client, headers, customer_id):
    response = client.get(f"/api/v1/customers/{customer_id}", headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def assert_envelope(response, status, code, field=None):
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code
    assert response.json["error"]["message"]
    assert response.json["error"]["field"] == field


# --- defining fields ---------------------------------------------------------------------------


def test_a_required_field_lowers_completeness_once_the_worker_recomputes(
    client, session, fake_wecom, runtime, clock
):
    company = make_company(session)
    complete = make_customer(session, company.reps[0][0], clock(), name="全的", **FULL)
    sparse = make_customer(session, company.reps[1][0], clock(), name="缺的", phone="13900139000")
    headers = boss = sign_in(client, fake_wecom, company.boss)
    assert detail(client, boss, complete.id)["customer"]["completeness"] == 100
    assert detail(client, boss, sparse.id)["customer"]["completeness"] == 22  # 2 of 9

    created = add_field(
        client,
        headers,
        key="needs_install",
        label="是否需要安装",
        kind="bool",
        is_required=True,
        is_tag_dimension=True,
    )

    assert created.status_code == 201, created.json
    assert created.json["is_required"] is True
    assert detail(client, boss, complete.id)["customer"]["completeness"] == 100  # not yet
    run_worker(runtime)
    full_now, sparse_now = detail(client, boss, complete.id), detail(client, boss, sparse.id)
    assert full_now["customer"]["completeness"] == 90  # 9 of 10, in every team
    assert full_now["missing_fields"] == ["custom_values.needs_install"]
    assert sparse_now["customer"]["completeness"] == 20  # 2 of 10


def test_making_a_field_required_or_retiring_it_rescores_customers(
    client, session, fake_wecom, runtime, clock
):
    company = make_company(session)
    rep = company.reps[0][0]
    headers = sign_in(client, fake_wecom, company.boss)
    field = add_field(client, headers, key="area_m2", label="厂房面积", kind="number").json
    answered = make_customer(
        session, rep, clock(), name="答了", **FULL, custom_values={"area_m2": 5000}
    )
    silent = make_customer(session, rep, clock(), name="没答", **{**FULL, "phone": "13900139000"})
    run_worker(runtime)  # an optional field queues nothing to do
    assert detail(client, headers, silent.id)["customer"]["completeness"] == 100

    required = client.patch(
        f"/api/v1/custom-fields/{field['id']}", headers=headers, json={"is_required": True}
    )
    assert required.status_code == 200, required.json
    run_worker(runtime)
    assert detail(client, headers, answered.id)["customer"]["completeness"] == 100
    assert detail(client, headers, silent.id)["customer"]["completeness"] == 90

    retired = client.patch(
        f"/api/v1/custom-fields/{field['id']}", headers=headers, json={"is_active": False}
    )
    assert retired.status_code == 200, retired.json
    run_worker(runtime)
    assert detail(client, headers, silent.id)["customer"]["completeness"] == 100
    listed = client.get("/api/v1/custom-fields", headers=headers).json["items"]
    assert listed == []


def test_several_field_changes_queue_a_single_recompute(client, session, fake_wecom, runtime):
    headers = sign_in(client, fake_wecom, make_company(session).boss)

    for key in ("a", "b", "c"):
        assert add_field(client, headers, key=key, kind="text", is_required=True).status_code == 201

    assert queues.queue(runtime.redis, queues.MAINTENANCE).count == 1


@pytest.mark.parametrize("role", ["rep", "manager"])
def test_only_the_boss_adds_or_changes_fields(role, client, session, fake_wecom):
    company = make_company(session)
    boss = sign_in(client, fake_wecom, company.boss)
    field = add_field(client, boss, key="note", kind="text").json
    user = company.reps[0][0] if role == "rep" else company.managers[0]
    headers = sign_in(client, fake_wecom, user)

    added = add_field(client, headers, key="budget", kind="number")
    changed = client.patch(
        f"/api/v1/custom-fields/{field['id']}", headers=headers, json={"label": "改名"}
    )

    assert_envelope(added, 403, "forbidden")
    assert_envelope(changed, 403, "forbidden")
    listed = client.get("/api/v1/custom-fields", headers=headers).json["items"]
    assert [(f["key"], f["label"]) for f in listed] == [("note", "note")]


def test_a_duplicate_key_is_a_conflict(client, session, fake_wecom):
    headers = sign_in(client, fake_wecom, make_company(session).boss)
    assert add_field(client, headers, key="note", kind="text").status_code == 201

    assert_envelope(add_field(client, headers, key="note", kind="text"), 409, "duplicate_field")


def test_an_enum_without_options_is_refused_naming_options(client, session, fake_wecom):
    headers = sign_in(client, fake_wecom, make_company(session).boss)

    assert_envelope(add_field(client, headers, key="level", kind="enum"), 422, "invalid", "options")


def test_a_null_in_a_field_change_is_refused_naming_the_setting(client, session, fake_wecom):
    headers = sign_in(client, fake_wecom, make_company(session).boss)
    field = add_field(client, headers, key="note", label="备注", kind="text").json

    response = client.patch(
        f"/api/v1/custom-fields/{field['id']}", headers=headers, json={"is_required": None}
    )

    assert_envelope(response, 422, "validation_failed", "is_required")
    assert client.get("/api/v1/custom-fields", headers=headers).json["items"][0]["label"] == "备注"


# --- values on customer writes -----------------------------------------------------------------


@pytest.fixture
def fields(client, session, fake_wecom):
    company = make_company(session)
    headers = sign_in(client, fake_wecom, company.boss)
    for body in (
        dict(key="needs_install", label="是否需要安装", kind="bool", is_tag_dimension=True),
        dict(key="level", label="意向强度", kind="enum", options=["强", "中", "弱"]),
        dict(key="area_m2", label="厂房面积", kind="number"),
        dict(key="visit_on", label="拜访日期", kind="date"),
    ):
        assert add_field(client, headers, **body).status_code == 201
    return company


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"level": "很强"}, "custom_values.level"),
        ({"area_m2": "五千平"}, "custom_values.area_m2"),
        ({"needs_install": "也许"}, "custom_values.needs_install"),
        ({"visit_on": "下周一"}, "custom_values.visit_on"),
        ({"colour": "红"}, "custom_values.colour"),
    ],
)
def test_a_bad_custom_value_on_create_is_refused_naming_it(
    client, session, fake_wecom, fields, values, field
):
    headers = sign_in(client, fake_wecom, fields.reps[0][0])

    response = client.post(
        "/api/v1/customers", headers=headers, json={"name": "张先生", "custom_values": values}
    )

    assert_envelope(response, 422, "invalid", field)
    assert client.get("/api/v1/customers", headers=headers).json["total"] == 0


def test_custom_values_are_stored_in_their_kind(client, session, fake_wecom, fields):
    headers = sign_in(client, fake_wecom, fields.reps[0][0])

    response = client.post(
        "/api/v1/customers",
        headers=headers,
        json={
            "name": "张先生",
            "custom_values": {
                "needs_install": "是",
                "level": "强",
                "area_m2": "5000",
                "visit_on": "2026/3/1",
            },
        },
    )

    assert response.status_code == 201, response.json
    assert response.json["custom_values"] == {
        "needs_install": True,
        "level": "强",
        "area_m2": 5000,
        "visit_on": "2026-03-01",
    }


def test_a_bad_custom_value_on_update_is_refused_and_nothing_changes(
    client, session, fake_wecom, fields
):
    headers = sign_in(client, fake_wecom, fields.reps[0][0])
    created = client.post(
        "/api/v1/customers",
        headers=headers,
        json={"name": "张先生", "custom_values": {"level": "强"}},
    ).json

    response = client.patch(
        f"/api/v1/customers/{created['id']}",
        headers=headers,
        json={"region": "浏阳", "custom_values": {"level": "强", "area_m2": "大"}},
    )

    assert_envelope(response, 422, "invalid", "custom_values.area_m2")
    after = detail(client, headers, created["id"])["customer"]
    assert (after["region"], after["custom_values"]) == (None, {"level": "强"})


def test_an_update_merges_custom_values_and_an_empty_one_clears_it(
    client, session, fake_wecom, fields
):
    headers = sign_in(client, fake_wecom, fields.reps[0][0])
    created = client.post(
        "/api/v1/customers",
        headers=headers,
        json={"name": "张先生", "custom_values": {"level": "强", "area_m2": 10}},
    ).json

    response = client.patch(
        f"/api/v1/customers/{created['id']}",
        headers=headers,
        json={"custom_values": {"level": "", "needs_install": False}},
    )

    assert response.status_code == 200, response.json
    assert response.json["custom_values"] == {"area_m2": 10, "needs_install": False}


# --- filtering ---------------------------------------------------------------------------------


def test_the_customer_list_filters_by_custom_values(client, session, fake_wecom, fields):
    headers = sign_in(client, fake_wecom, fields.reps[0][0])
    for name, values in [
        ("要安装的大厂", {"needs_install": True, "level": "强", "area_m2": 5000}),
        ("不要安装", {"needs_install": False, "level": "弱", "area_m2": 80.5}),
        ("没填", {}),
    ]:
        created = client.post(
            "/api/v1/customers", headers=headers, json={"name": name, "custom_values": values}
        )
        assert created.status_code == 201, created.json

    def listed(*filters):
        response = client.get(
            "/api/v1/customers", headers=headers, query_string={"custom": list(filters)}
        )
        assert response.status_code == 200, response.json
        return sorted(c["name"] for c in response.json["items"])

    assert listed("needs_install:是") == ["要安装的大厂"]
    assert listed("needs_install:否") == ["不要安装"]
    assert listed("level:弱") == ["不要安装"]
    assert listed("area_m2:5000") == ["要安装的大厂"]
    assert listed("area_m2:80.5") == ["不要安装"]
    assert listed("needs_install:是", "level:弱") == []


def test_a_filter_on_an_unknown_field_or_with_a_bad_value_is_refused(
    client, session, fake_wecom, fields
):
    headers = sign_in(client, fake_wecom, fields.reps[0][0])

    unknown = client.get("/api/v1/customers", headers=headers, query_string={"custom": "colour:红"})
    bad_value = client.get(
        "/api/v1/customers", headers=headers, query_string={"custom": "level:很强"}
    )

    assert_envelope(unknown, 422, "invalid", "custom")
    assert_envelope(bad_value, 422, "invalid", "custom_values.level")
