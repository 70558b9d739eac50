"""FakeWeCom's own contract, driven over plain HTTP the way WeCom would be."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys

import pytest
import requests

from fake_wecom import FakeWeCom

DEPARTMENTS = [
    {"id": 1, "name": "示例公司", "parentid": 0},
    {"id": 2, "name": "华东销售部", "parentid": 1},
    {"id": 3, "name": "上海组", "parentid": 2},
]
USERS = [
    {"userid": "zhangsan", "name": "张三", "department": [2], "status": 1},
    {"userid": "lisi", "name": "李四", "department": [3], "status": 1},
]


@pytest.fixture
def fake():
    with FakeWeCom() as fake:
        fake.load_directory(DEPARTMENTS, USERS)
        yield fake


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


def call(http, fake, endpoint, token=None, body=None, **params):
    """One API call as WeCom's clients make it; returns the decoded JSON."""
    if token is not None:
        params["access_token"] = token
    url = f"{fake.base_url}{endpoint}"
    if body is None:
        response = http.get(url, params=params, timeout=2)
    else:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = http.post(url, params=params, data=data, timeout=2)
    assert response.status_code == 200
    return response.json()


def get_token(http, fake):
    result = call(http, fake, "gettoken", corpid=fake.corp_id, corpsecret=fake.secret)
    return result["access_token"]


def text_message(fake, **overrides):
    body = {
        "touser": "zhangsan",
        "msgtype": "text",
        "agentid": fake.agent_id,
        "text": {"content": "hi"},
    }
    return body | overrides


# -- lifecycle ------------------------------------------------------------------------------------


def test_port_zero_picks_a_free_port_and_stop_releases_it():
    fake = FakeWeCom().start(port=0)
    port = fake.port
    assert fake.base_url == f"http://127.0.0.1:{port}/cgi-bin/"
    fake.stop()
    fake.stop()  # idempotent

    with socket.create_server(("127.0.0.1", port)):
        pass  # the port is free again


def test_starting_on_a_busy_port_raises_oserror():
    with socket.create_server(("127.0.0.1", 0)) as busy, pytest.raises(OSError):
        FakeWeCom().start(port=busy.getsockname()[1])


def test_module_entry_point_prints_the_base_url_and_stops_on_ctrl_c():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with subprocess.Popen(
        [sys.executable, "-m", "fake_wecom", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        first_line = process.stdout.readline()
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)

    assert f"http://127.0.0.1:{port}/cgi-bin/" in first_line
    assert process.returncode == 0


# -- tokens ---------------------------------------------------------------------------------------


def test_gettoken_issues_a_token_for_7200_seconds_and_counts_requests(fake, http):
    result = call(http, fake, "gettoken", corpid=fake.corp_id, corpsecret=fake.secret)

    assert result["errcode"] == 0
    assert result["access_token"]
    assert result["expires_in"] == 7200
    assert fake.token_requests == 1


@pytest.mark.parametrize(
    ("corpid", "secret", "errcode"),
    [("wwfakecorp", "wrong", 40001), ("wwother", "fake-secret", 40013)],
    ids=["wrong-secret", "wrong-corpid"],
)
def test_gettoken_rejects_wrong_credentials(fake, http, corpid, secret, errcode):
    result = call(http, fake, "gettoken", corpid=corpid, corpsecret=secret)

    assert result["errcode"] == errcode
    assert "access_token" not in result


def test_gettoken_returns_the_same_token_until_it_expires(fake, http):
    first = get_token(http, fake)
    assert get_token(http, fake) == first

    fake.expire_tokens()

    assert get_token(http, fake) != first


@pytest.mark.parametrize(
    ("token", "errcode"),
    [(None, 41001), ("made-up", 40014)],
    ids=["missing", "unknown"],
)
def test_api_calls_need_a_valid_token(fake, http, token, errcode):
    assert call(http, fake, "department/list", token=token)["errcode"] == errcode


def test_expired_token_answers_42001(fake, http):
    token = get_token(http, fake)
    fake.expire_tokens()

    assert call(http, fake, "department/list", token=token)["errcode"] == 42001


# -- test controls --------------------------------------------------------------------------------


def test_fail_next_answers_the_errcode_that_many_times_then_recovers(fake, http):
    token = get_token(http, fake)
    fake.fail_next("department/list", 45009, times=2)

    errcodes = [call(http, fake, "department/list", token=token)["errcode"] for _ in range(3)]

    assert errcodes == [45009, 45009, 0]


def test_unreachable_answers_503_to_api_calls_but_keeps_the_page_up(fake, http):
    fake.set_unreachable(True)

    assert http.get(f"{fake.base_url}gettoken", timeout=2).status_code == 503
    assert http.get(fake.page_url, timeout=2).status_code == 200
    assert fake.token_requests == 0

    fake.set_unreachable(False)
    assert get_token(http, fake)


def test_reset_forgets_tokens_codes_messages_and_counters(fake, http):
    token = get_token(http, fake)
    fake.register_code("code-1", "zhangsan")
    call(http, fake, "message/send", token=token, body=text_message(fake))

    fake.reset()

    assert (fake.messages, fake.calls, fake.token_requests) == ([], [], 0)
    assert call(http, fake, "department/list", token=token)["errcode"] == 40014
    token = get_token(http, fake)
    assert call(http, fake, "department/list", token=token)["department"] == []
    assert (
        call(http, fake, "miniprogram/jscode2session", token=token, js_code="code-1")["errcode"]
        == 40029
    )


def test_unknown_paths_answer_404(fake, http):
    assert http.get(f"{fake.base_url}no/such/api", timeout=2).status_code == 404


# -- login and directory --------------------------------------------------------------------------


def test_jscode2session_answers_registered_code_once(fake, http):
    token = get_token(http, fake)
    fake.register_code("code-1", "lisi")
    params = {"js_code": "code-1", "grant_type": "authorization_code"}

    first = call(http, fake, "miniprogram/jscode2session", token=token, **params)
    second = call(http, fake, "miniprogram/jscode2session", token=token, **params)

    assert (first["errcode"], first["userid"], first["corpid"]) == (0, "lisi", fake.corp_id)
    assert (second["errcode"], second["errmsg"]) == (40029, "invalid code")


def test_department_list_with_id_returns_that_subtree(fake, http):
    token = get_token(http, fake)

    result = call(http, fake, "department/list", token=token, id=2)

    assert [d["id"] for d in result["department"]] == [2, 3]


def test_user_list_with_fetch_child_includes_sub_departments(fake, http):
    token = get_token(http, fake)

    direct = call(http, fake, "user/list", token=token, department_id=1)
    nested = call(http, fake, "user/list", token=token, department_id=1, fetch_child=1)

    assert direct["userlist"] == []
    assert [u["userid"] for u in nested["userlist"]] == ["zhangsan", "lisi"]


def test_load_directory_rejects_users_without_a_department_list(fake):
    with pytest.raises(ValueError):
        fake.load_directory(DEPARTMENTS, [{"userid": "wangwu", "department": 2}])


# -- message/send ---------------------------------------------------------------------------------


def test_text_of_exactly_2048_bytes_is_accepted(fake, http):
    token = get_token(http, fake)
    body = text_message(fake, text={"content": "字" * 682 + "ab"})  # 2046 + 2 bytes

    assert call(http, fake, "message/send", token=token, body=body)["errcode"] == 0
    assert len(fake.messages) == 1


@pytest.mark.parametrize(
    ("overrides", "errcode"),
    [
        ({"agentid": None}, 41011),
        ({"agentid": 1}, 40056),
        ({"touser": ["zhangsan"]}, 40058),
        ({"msgtype": "textcard"}, 40058),
        ({"text": {"content": "字" * 683}}, 45002),
        (
            {
                "msgtype": "textcard",
                "textcard": {"title": "t" * 129, "description": "d", "url": "u"},
            },
            45002,
        ),
        ({"msgtype": "textcard", "textcard": {"title": "t", "url": "u"}}, 41033),
        ({"touser": "|".join(f"u{i}" for i in range(1001))}, 40032),
    ],
    ids=[
        "missing-agentid",
        "wrong-agentid",
        "touser-as-list",
        "missing-type-object",
        "text-too-long",
        "card-title-too-long",
        "card-no-description",
        "too-many-users",
    ],
)
def test_message_send_rejects_invalid_bodies(fake, http, overrides, errcode):
    token = get_token(http, fake)
    body = {k: v for k, v in text_message(fake, **overrides).items() if v is not None}

    assert call(http, fake, "message/send", token=token, body=body)["errcode"] == errcode
    assert fake.messages == []


def test_message_send_rejects_a_body_that_is_not_json(fake, http):
    token = get_token(http, fake)

    assert call(http, fake, "message/send", token=token, body=b"not json")["errcode"] == 47001


def test_31st_message_to_a_member_within_a_minute_answers_45009_and_is_not_recorded(fake, http):
    now = [1_000_000.0]
    fake.clock = lambda: now[0]
    token = get_token(http, fake)
    for _ in range(30):
        assert (
            call(http, fake, "message/send", token=token, body=text_message(fake))["errcode"] == 0
        )

    over = call(http, fake, "message/send", token=token, body=text_message(fake, touser="ZhangSan"))
    other = call(http, fake, "message/send", token=token, body=text_message(fake, touser="lisi"))
    now[0] += 60
    later = call(http, fake, "message/send", token=token, body=text_message(fake))

    assert (over["errcode"], other["errcode"], later["errcode"]) == (45009, 0, 0)
    assert len(fake.messages) == 32


def test_duplicate_check_drops_the_same_message_within_its_interval_only(fake, http):
    now = [1_000_000.0]
    fake.clock = lambda: now[0]
    token = get_token(http, fake)
    checked = {"enable_duplicate_check": 1, "duplicate_check_interval": 300}

    def send(**overrides):
        return call(http, fake, "message/send", token=token, body=text_message(fake, **overrides))

    first = send(**checked)
    now[0] += 299
    resent = send(**checked)
    other_text = send(**checked, text={"content": "bye"})
    other_member = send(**checked, touser="lisi")
    now[0] += 1
    after_interval = send(**checked)
    unchecked = send()

    answers = (first, resent, other_text, other_member, after_interval, unchecked)
    assert {a["errcode"] for a in answers} == {0}
    assert resent["msgid"] == first["msgid"]
    assert [(m["touser"], m["text"]["content"]) for m in fake.messages] == [
        (["zhangsan"], "hi"),
        (["zhangsan"], "bye"),
        (["lisi"], "hi"),
        (["zhangsan"], "hi"),  # 300 s after the first copy
        (["zhangsan"], "hi"),  # no check asked for
    ]


@pytest.mark.parametrize("interval", [0, 4 * 3600 + 1, "300"])
def test_duplicate_check_interval_beyond_four_hours_is_refused(fake, http, interval):
    token = get_token(http, fake)
    body = text_message(fake, enable_duplicate_check=1, duplicate_check_interval=interval)
    assert call(http, fake, "message/send", token=token, body=body)["errcode"] == 40058
    assert fake.messages == []


def test_without_a_directory_every_recipient_is_accepted(fake, http):
    fake.load_directory([], [])
    token = get_token(http, fake)

    result = call(http, fake, "message/send", token=token, body=text_message(fake, touser="anyone"))

    assert (result["errcode"], result["invaliduser"]) == (0, "")
    assert fake.messages[0]["touser"] == ["anyone"]


def test_unknown_party_is_reported_and_known_party_receives(fake, http):
    token = get_token(http, fake)
    body = text_message(fake, touser="", toparty="2|99")

    result = call(http, fake, "message/send", token=token, body=body)

    assert result["invalidparty"] == "99"
    assert fake.messages[0]["toparty"] == ["2"]


# -- the page -------------------------------------------------------------------------------------


def test_page_lists_messages_newest_first_with_recipient_names(fake, http):
    token = get_token(http, fake)
    for content in ("第一条", "第二条"):
        body = text_message(fake, text={"content": content})
        call(http, fake, "message/send", token=token, body=body)

    response = http.get(fake.page_url, timeout=2)

    assert response.headers["Content-Type"].startswith("text/html")
    page = response.text
    assert "<title>企业微信模拟服务</title>" in page
    assert "张三 (zhangsan)" in page
    assert page.index("第二条") < page.index("第一条")


def test_page_escapes_html_in_message_content(fake, http):
    token = get_token(http, fake)
    body = text_message(fake, text={"content": "<script>alert(1)</script>"})
    call(http, fake, "message/send", token=token, body=body)

    page = http.get(fake.page_url, timeout=2).text

    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_fake_messages_json_lists_accepted_messages_oldest_first(fake, http):
    token = get_token(http, fake)
    for content in ("第一条", "第二条"):
        body = text_message(fake, text={"content": content})
        call(http, fake, "message/send", token=token, body=body)

    messages = http.get(f"{fake.page_url}_fake/messages", timeout=2).json()["messages"]

    assert [m["text"]["content"] for m in messages] == ["第一条", "第二条"]
    assert messages == fake.messages


# -- template cards -------------------------------------------------------------------------------


def button_card(fake, **overrides):
    card = {
        "card_type": "button_interaction",
        "main_title": {"title": "订单待审批：SO-1"},
        "sub_title_text": "请审批「主管审批」。",
        "horizontal_content_list": [{"keyname": "金额", "value": "¥1,000.00"}],
        "task_id": "order-1-step-1-u2",
        "button_list": [
            {"type": 0, "text": "同意", "style": 1, "key": "approve"},
            {"type": 0, "text": "驳回", "style": 2, "key": "reject"},
        ],
    } | overrides
    return text_message(fake, msgtype="template_card", template_card=card, text=None)


def test_a_button_card_is_accepted_once_per_task_id(fake, http):
    token = get_token(http, fake)
    body = {k: v for k, v in button_card(fake).items() if v is not None}

    first = call(http, fake, "message/send", token=token, body=body)
    again = call(http, fake, "message/send", token=token, body=body)

    assert (first["errcode"], again["errcode"]) == (0, 42014)
    assert [m["template_card"]["task_id"] for m in fake.messages] == ["order-1-step-1-u2"]
    assert "[同意]  [驳回]" in http.get(fake.page_url, timeout=2).text


BUTTONS = [{"text": "同意", "key": "approve"}]


@pytest.mark.parametrize(
    ("overrides", "errcode"),
    [
        ({"task_id": None}, 42014),
        ({"task_id": "order 1"}, 42014),
        ({"task_id": "t" * 129}, 42014),
        ({"card_type": "fancy"}, 40058),
        ({"main_title": None, "sub_title_text": None}, 40058),
        ({"button_list": []}, 40058),
        ({"button_list": BUTTONS * 7}, 40058),
        ({"button_list": BUTTONS * 2}, 40058),
        ({"button_list": [{"text": "同意"}]}, 40058),
        ({"button_list": [{"key": "approve"}]}, 40058),
        ({"button_list": [{"type": 1, "text": "详情"}]}, 40058),
        ({"horizontal_content_list": [{"keyname": "k", "value": "v"}] * 7}, 40058),
        ({"horizontal_content_list": [{"value": "v"}]}, 40058),
    ],
    ids=[
        "no-task-id",
        "task-id-with-space",
        "task-id-too-long",
        "unknown-card-type",
        "no-title",
        "no-buttons",
        "seven-buttons",
        "repeated-key",
        "button-without-key",
        "button-without-text",
        "url-button-without-url",
        "seven-lines",
        "line-without-keyname",
    ],
)
def test_a_bad_button_card_is_refused(fake, http, overrides, errcode):
    token = get_token(http, fake)
    message = button_card(fake, **overrides)
    card = {k: v for k, v in message["template_card"].items() if v is not None}
    body = {k: v for k, v in message.items() if v is not None} | {"template_card": card}

    assert call(http, fake, "message/send", token=token, body=body)["errcode"] == errcode
    assert fake.messages == []


BEHAVIOR = "externalcontact/get_user_behavior_data"
MARCH_1 = 1772294400  # 2026-03-01 00:00 in Beijing


def test_behavior_data_answers_each_day_rounded_down_and_sums_several_members(fake, http):
    token = get_token(http, fake)
    fake.set_behavior("zhangsan", MARCH_1, chat_cnt=3, message_cnt=9, reply_percentage=50.0)
    fake.set_behavior("lisi", MARCH_1, chat_cnt=1, message_cnt=2, reply_percentage=100.0)
    noon = MARCH_1 + 86400 + 12 * 3600  # 2 March, noon: counts as 2 March
    one = call(
        http,
        fake,
        BEHAVIOR,
        token,
        {"userid": ["zhangsan"], "start_time": MARCH_1 + 3600, "end_time": noon},
    )
    assert [d["stat_time"] for d in one["behavior_data"]] == [MARCH_1, MARCH_1 + 86400]
    assert one["behavior_data"][0]["chat_cnt"] == 3
    both = call(
        http,
        fake,
        BEHAVIOR,
        token,
        {"userid": ["zhangsan", "lisi"], "start_time": MARCH_1, "end_time": MARCH_1},
    )
    (day,) = both["behavior_data"]
    assert (day["chat_cnt"], day["message_cnt"], day["reply_percentage"]) == (4, 11, 75.0)
    later = {
        "userid": ["zhangsan"],
        "start_time": MARCH_1 + 5 * 86400,
        "end_time": MARCH_1 + 5 * 86400,
    }
    (made_up,) = call(http, fake, BEHAVIOR, token, later)["behavior_data"]
    assert made_up == call(http, fake, BEHAVIOR, token, later)["behavior_data"][0]  # stable
    assert made_up["message_cnt"] >= made_up["chat_cnt"] >= 0
    unknown = {"userid": ["nobody"], "start_time": MARCH_1, "end_time": MARCH_1}
    assert call(http, fake, BEHAVIOR, token, unknown)["errcode"] == 60111


@pytest.mark.parametrize(
    "body",
    [
        {"userid": [], "start_time": MARCH_1, "end_time": MARCH_1},
        {"userid": ["zhangsan"], "start_time": MARCH_1, "end_time": MARCH_1 + 30 * 86400},
        {"userid": ["zhangsan"], "start_time": MARCH_1 + 86400, "end_time": MARCH_1},
        {"userid": ["zhangsan"], "start_time": "x", "end_time": MARCH_1},
    ],
)
def test_behavior_data_refuses_a_bad_request(fake, http, body):
    answer = call(http, fake, BEHAVIOR, get_token(http, fake), body)
    assert answer["errcode"] == 40058


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def upload(http, fake, token, data, media_type="image"):
    response = http.post(
        f"{fake.base_url}media/upload",
        params={"access_token": token, "type": media_type},
        files={"media": ("digest.png", data, "image/png")},
        timeout=2,
    )
    assert response.status_code == 200
    return response.json()


def test_an_uploaded_image_is_sent_by_media_id_and_shown_on_the_page(fake, http):
    token = get_token(http, fake)
    answer = upload(http, fake, token, PNG)
    assert answer["errcode"] == 0 and answer["type"] == "image"
    media_id = answer["media_id"]
    assert fake.uploads[0]["data"] == PNG

    body = text_message(fake, msgtype="image", image={"media_id": media_id})
    del body["text"]
    assert call(http, fake, "message/send", token=token, body=body)["errcode"] == 0

    page = http.get(fake.page_url, timeout=2).text
    assert f'<img src="/_fake/media/{media_id}"' in page
    picture = http.get(f"{fake.page_url.rstrip('/')}/_fake/media/{media_id}", timeout=2)
    assert picture.content == PNG and picture.headers["Content-Type"] == "image/png"


def test_an_image_message_needs_an_uploaded_media_id_and_an_upload_a_picture(fake, http):
    token = get_token(http, fake)
    body = text_message(fake, msgtype="image", image={"media_id": "never-uploaded"})
    assert call(http, fake, "message/send", token=token, body=body)["errcode"] == 40007
    assert upload(http, fake, token, b"not a picture at all")["errcode"] == 40005
    assert upload(http, fake, token, PNG, media_type="sticker")["errcode"] == 40004
    assert fake.messages == [] and fake.uploads == []
