"""The real WeComClient against the real FakeWeCom on 127.0.0.1, tokens in a real Redis."""

from __future__ import annotations

import json
import pickle
import socket
import threading
import time
import traceback

import pytest
import requests

from fake_wecom import FakeWeCom
from wecom import WeComClient, WeComError, WeComUnavailable

DEPARTMENTS = [
    {"id": 1, "name": "示例公司", "parentid": 0, "order": 100},
    {"id": 2, "name": "华东销售部", "parentid": 1, "order": 90},
    {"id": 3, "name": "上海组", "parentid": 2, "order": 80},
]
USERS = [
    {
        "userid": "zhangsan",
        "name": "张三",
        "department": [2],
        "is_leader_in_dept": [1],
        "position": "销售经理",
        "mobile": "13800000001",
        "email": "zhangsan@example.com",
        "status": 1,
    },
    {
        "userid": "lisi",
        "name": "李四",
        "department": [3],
        "is_leader_in_dept": [0],
        "position": "销售代表",
        "mobile": "13800000002",
        "email": "lisi@example.com",
        "status": 1,
    },
]


@pytest.fixture
def fake():
    with FakeWeCom() as fake:
        fake.load_directory(DEPARTMENTS, USERS)
        yield fake


@pytest.fixture
def make_client(fake, redis_conn):
    """Build clients pointed at the fake; all are closed after the test."""
    clients: list[WeComClient] = []

    def make(**overrides) -> WeComClient:
        settings = {
            "corp_id": fake.corp_id,
            "secret": fake.secret,
            "agent_id": fake.agent_id,
            "api_base": fake.base_url,
            "redis": redis_conn,
            "timeout": 2.0,
        }
        client = WeComClient(**(settings | overrides))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def wecom_client(make_client):
    return make_client()


# -- tokens ---------------------------------------------------------------------------------------


def test_token_is_fetched_once_and_shared_between_clients_through_redis(
    fake, make_client, redis_conn
):
    make_client().list_departments()
    make_client().list_departments()

    assert fake.token_requests == 1
    [key] = redis_conn.keys("wecrm:wecom:*")
    assert 0 < redis_conn.ttl(key) <= 7200


def test_expired_token_is_refetched_once_and_the_call_succeeds(fake, wecom_client):
    wecom_client.list_departments()
    fake.expire_tokens()

    departments = wecom_client.list_departments()

    assert [d["id"] for d in departments] == [1, 2, 3]
    assert fake.token_requests == 2
    # The retry carried the new token: a resent stale one would have failed with 42001 again.
    assert fake.calls.count("department/list") == 3


@pytest.mark.parametrize("errcode", [40014, 42001])
def test_token_error_on_every_call_raises_after_exactly_one_refetch(fake, wecom_client, errcode):
    fake.fail_next("department/list", errcode, times=100)

    with pytest.raises(WeComError) as caught:
        wecom_client.list_departments()

    assert caught.value.errcode == errcode
    assert fake.token_requests == 2
    assert fake.calls.count("department/list") == 2


def test_bad_secret_raises_40001_without_retrying(fake, make_client):
    wecom_client = make_client(secret="wrong-secret")

    with pytest.raises(WeComError) as caught:
        wecom_client.list_departments()

    assert caught.value.errcode == 40001
    assert fake.token_requests == 1


def test_other_errcodes_are_raised_without_refetching_the_token(fake, wecom_client):
    fake.fail_next("user/list", 60011)

    with pytest.raises(WeComError) as caught:
        wecom_client.list_department_users(2)

    assert caught.value.errcode == 60011
    assert fake.token_requests == 1


# -- unavailability -------------------------------------------------------------------------------


def test_unreachable_wecom_raises_wecom_unavailable_when_fetching_the_token(fake, wecom_client):
    fake.set_unreachable(True)

    with pytest.raises(WeComUnavailable) as caught:
        wecom_client.list_departments()

    assert caught.value.errcode == -1


def test_unreachable_wecom_raises_wecom_unavailable_with_a_cached_token(fake, wecom_client):
    wecom_client.list_departments()
    fake.set_unreachable(True)

    with pytest.raises(WeComUnavailable):
        wecom_client.send_message(["zhangsan"], "text", {"content": "你好"})

    assert fake.messages == []


def test_refused_connection_raises_wecom_unavailable(make_client):
    with FakeWeCom() as stopped_soon:
        dead_base = stopped_soon.base_url
    wecom_client = make_client(api_base=dead_base)

    with pytest.raises(WeComUnavailable):
        wecom_client.list_departments()


def test_silent_server_times_out_as_wecom_unavailable_even_while_fetching_the_token(make_client):
    # wechatpy's own gettoken passes no timeout. This server lets clients connect but never
    # answers; it gives up after 5 s, so a missing timeout fails the test instead of hanging it.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        safety_net = threading.Timer(5, silent.close)
        safety_net.start()
        port = silent.getsockname()[1]
        wecom_client = make_client(api_base=f"http://127.0.0.1:{port}/cgi-bin/", timeout=0.3)
        started = time.monotonic()

        with pytest.raises(WeComUnavailable):
            wecom_client.list_departments()

        safety_net.cancel()
    assert time.monotonic() - started < 3


def _chain(error: BaseException) -> list[BaseException]:
    """The error and every exception its traceback would print or a debugger could reach."""
    chain = [error]
    while chain[-1].__cause__ or chain[-1].__context__:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    return chain


@pytest.mark.parametrize("cached_token", [False, True], ids=["gettoken", "with-token"])
@pytest.mark.parametrize("failure", ["http-503", "connection-refused"])
def test_unavailable_errors_carry_no_url_secret_or_token_in_text_or_chain(
    fake, make_client, redis_conn, cached_token, failure
):
    client = make_client()
    if cached_token:
        client.list_departments()
    if failure == "http-503":
        fake.set_unreachable(True)
    else:
        client = make_client(api_base="http://127.0.0.1:9/cgi-bin/")  # discard port: refused
    tokens = [json.loads(redis_conn.get(k)) for k in redis_conn.keys("wecrm:wecom:*")]

    with pytest.raises(WeComUnavailable) as caught:
        client.send_message(["zhangsan"], "text", {"content": "你好"})

    assert _chain(caught.value) == [caught.value]
    printed = "".join(traceback.format_exception(caught.value))
    for credential in [fake.secret, *tokens, "corpsecret", "access_token=", "127.0.0.1"]:
        assert credential not in printed


def test_the_shared_token_key_names_no_part_of_the_secret(fake, wecom_client, redis_conn):
    wecom_client.list_departments()

    [key] = redis_conn.keys("wecrm:wecom:*")
    assert key.startswith(f"wecrm:wecom:{fake.corp_id}_".encode())
    assert fake.secret[:10].encode() not in key  # wechatpy's own key would hold these


def test_wecom_errors_survive_pickling_for_job_queues():
    for error in (WeComError(40029, "invalid code"), WeComUnavailable(-1, "timed out")):
        copy = pickle.loads(pickle.dumps(error))
        assert (type(copy), copy.errcode, copy.errmsg) == (type(error), error.errcode, error.errmsg)


# -- mini-program login ---------------------------------------------------------------------------


def test_code_to_session_returns_userid_corpid_and_session_key(fake, wecom_client):
    fake.register_code("code-1", "zhangsan")

    session = wecom_client.code_to_session("code-1")

    assert session["userid"] == "zhangsan"
    assert session["corpid"] == fake.corp_id
    assert session["session_key"]


def test_code_to_session_with_unknown_code_raises_40029(wecom_client):
    with pytest.raises(WeComError) as caught:
        wecom_client.code_to_session("never-issued")

    assert caught.value.errcode == 40029


def test_login_code_works_only_once(fake, wecom_client):
    fake.register_code("code-1", "zhangsan")
    wecom_client.code_to_session("code-1")

    with pytest.raises(WeComError) as caught:
        wecom_client.code_to_session("code-1")

    assert caught.value.errcode == 40029


# -- directory ------------------------------------------------------------------------------------


def test_list_departments_returns_the_whole_tree(wecom_client):
    departments = wecom_client.list_departments()

    assert [(d["id"], d["name"], d["parentid"]) for d in departments] == [
        (1, "示例公司", 0),
        (2, "华东销售部", 1),
        (3, "上海组", 2),
    ]


def test_list_department_users_returns_direct_members_with_wecom_fields(wecom_client):
    users = wecom_client.list_department_users(2)

    assert [u["userid"] for u in users] == ["zhangsan"]  # lisi is in sub-department 3
    assert users[0]["department"] == [2]
    assert users[0]["is_leader_in_dept"] == [1]
    assert users[0]["position"] == "销售经理"


def test_list_department_users_of_unknown_department_raises_60003(wecom_client):
    with pytest.raises(WeComError) as caught:
        wecom_client.list_department_users(99)

    assert caught.value.errcode == 60003


def test_generic_get_passes_query_parameters(wecom_client):
    result = wecom_client.get("user/list", department_id=2, fetch_child=1)

    assert [u["userid"] for u in result["userlist"]] == ["zhangsan", "lisi"]


# -- messages -------------------------------------------------------------------------------------


def test_sent_text_message_is_recorded_and_visible_at_fake_messages(fake, wecom_client):
    result = wecom_client.send_message(["zhangsan", "lisi"], "text", {"content": "客户A已转入公海"})

    assert result["errcode"] == 0
    assert result["msgid"]
    [message] = fake.messages
    assert message["touser"] == ["zhangsan", "lisi"]
    assert message["agentid"] == fake.agent_id
    assert message["text"] == {"content": "客户A已转入公海"}
    assert message["received_at"]
    with requests.get(f"{fake.page_url}_fake/messages", timeout=2) as response:
        assert response.json()["messages"] == [message]


def test_sent_textcard_message_is_recorded(fake, wecom_client):
    card = {
        "title": "跟进提醒",
        "description": "客户B 3 天未跟进",
        "url": "https://example.com/customers/42",
        "btntxt": "详情",
    }

    wecom_client.send_message(["zhangsan"], "textcard", card)

    assert fake.messages[0]["msgtype"] == "textcard"
    assert fake.messages[0]["textcard"] == card


def test_generic_post_sends_to_a_department(fake, wecom_client):
    payload = {
        "toparty": "3",
        "msgtype": "text",
        "agentid": fake.agent_id,
        "text": {"content": "hi"},
    }

    wecom_client.post("message/send", payload)

    assert fake.messages[0]["toparty"] == ["3"]


def test_unknown_recipients_are_reported_while_known_ones_still_receive(fake, wecom_client):
    result = wecom_client.send_message(["zhangsan", "Ghost"], "text", {"content": "hi"})

    assert result["invaliduser"] == "ghost"
    assert fake.messages[0]["touser"] == ["zhangsan"]


def test_message_to_only_unknown_recipients_raises_81013(fake, wecom_client):
    with pytest.raises(WeComError) as caught:
        wecom_client.send_message(["ghost"], "text", {"content": "hi"})

    assert caught.value.errcode == 81013
    assert fake.messages == []


@pytest.mark.parametrize(
    ("touser", "msgtype", "content", "errcode"),
    [
        ([], "text", {"content": "hi"}, 40058),
        (["zhangsan"], "sms", {"content": "hi"}, 40008),
        (["zhangsan"], "text", {"content": ""}, 44004),
        (["zhangsan"], "text", {"content": "字" * 683}, 45002),  # 2049 bytes
        (["zhangsan"], "textcard", {"title": "t", "description": "d"}, 41010),
    ],
    ids=["no-recipient", "unknown-msgtype", "empty-text", "text-over-2048-bytes", "card-no-url"],
)
def test_invalid_message_raises_wecom_error_and_is_not_recorded(
    fake, wecom_client, touser, msgtype, content, errcode
):
    with pytest.raises(WeComError) as caught:
        wecom_client.send_message(touser, msgtype, content)

    assert caught.value.errcode == errcode
    assert fake.messages == []


# -- the archive secret ---------------------------------------------------------------------------


def test_consent_is_asked_with_the_archive_secrets_own_token(fake, make_client):
    app = make_client()
    archive = make_client(secret=fake.archive_secret)
    fake.refuse_archiving("zhangsan", "wmRefused01")
    answers = archive.check_single_agree([("zhangsan", "wmRefused01"), ("lisi", "wmAgreed01")])
    assert [(a["userid"], a["exteranalopenid"], a["agree_status"]) for a in answers] == [
        ("zhangsan", "wmRefused01", "Disagree"),
        ("lisi", "wmAgreed01", "Agree"),
    ]
    with pytest.raises(WeComError) as refused:
        app.check_single_agree([("lisi", "wmAgreed01")])
    assert refused.value.errcode == 48002  # the app secret's token may not read the archive
    app.list_departments()
    archive.check_single_agree([("lisi", "wmAgreed01")])
    assert fake.token_requests == 2  # one token per secret, cached apart: neither replaced
