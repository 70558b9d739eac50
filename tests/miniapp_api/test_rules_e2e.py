"""The seed's rules end to end: HTTP in, a real RQ worker, WeCom messages out to the fake WeCom."""

from __future__ import annotations

import io

from rq import Queue, SimpleWorker

from tests.factories import make_company, make_customer, sign_in
from workers import jobs, queues

PDF = b"%PDF-1.4 quote"


def _work(runtime) -> None:
    """Run every queued job, and the jobs those jobs queue, the way `wecrm worker` does."""
    SimpleWorker(list(queues.ALL_QUEUES), connection=runtime.redis).work(burst=True)


def _inbox(fake_wecom, userid):
    return [m for m in fake_wecom.messages if userid in m["touser"]]


def test_a_quote_with_a_pdf_moves_the_customer_and_the_manager_hears_of_it(
    client, session, fake_wecom, runtime, clock
):
    company = make_company(session)
    rep, manager = company.reps[0][0], company.managers[0]
    customer = make_customer(session, rep, clock(), stage="意向", name="湘潭建材城")
    headers = sign_in(client, fake_wecom, rep)

    logged = client.post(
        f"/api/v1/customers/{customer.id}/follow-ups",
        headers=headers,
        data={
            "method": "微信",
            "summary": "已发送正式报价单，客户周五前回复",
            "files": [(io.BytesIO(PDF), "报价单.pdf")],
        },
        content_type="multipart/form-data",
    )
    assert logged.status_code == 201, logged.json
    detail = client.get(f"/api/v1/customers/{customer.id}", headers=headers).json
    assert detail["customer"]["stage"] == "报价"

    manager_headers = sign_in(client, fake_wecom, manager)
    tasks = client.get("/api/v1/tasks", headers=manager_headers).json["items"]
    assert [t["title"] for t in tasks] == ["审核报价：湘潭建材城"]

    _work(runtime)
    [message] = _inbox(fake_wecom, manager.wecom_userid)
    assert message["msgtype"] == "textcard"
    assert "湘潭建材城" in message["textcard"]["description"]
    assert message["textcard"]["url"].endswith(f"/customers/{customer.id}")
    assert _inbox(fake_wecom, rep.wecom_userid) == []


def test_quiet_days_remind_then_release_and_a_second_sweep_changes_nothing(
    client, session, fake_wecom, runtime, clock
):
    company = make_company(session)
    rep, manager = company.reps[0][0], company.managers[0]
    customer = make_customer(session, rep, clock(), stage="报价", name="株洲瓷砖店")
    timers = Queue(queues.MAINTENANCE, connection=runtime.redis)

    clock.advance(days=7)
    timers.enqueue(jobs.run_timers)
    _work(runtime)
    [reminder] = _inbox(fake_wecom, rep.wecom_userid)
    [copy] = _inbox(fake_wecom, manager.wecom_userid)
    assert "株洲瓷砖店" in reminder["textcard"]["description"]
    assert copy["textcard"]["title"].startswith("【抄送】")
    rep_headers = sign_in(client, fake_wecom, rep)
    today = client.get("/api/v1/me/today", headers=rep_headers).json["items"]
    assert any(item.get("customer", {}).get("id") == customer.id for item in today)

    clock.advance(days=23)  # 30 days without a follow-up
    timers.enqueue(jobs.run_timers)
    _work(runtime)
    rep_headers = sign_in(client, fake_wecom, rep)  # the first sign-in has expired meanwhile
    assert client.get(f"/api/v1/customers/{customer.id}", headers=rep_headers).status_code == 404
    pool = client.get("/api/v1/pool", headers=rep_headers).json["items"]
    assert [(c["id"], c["release_reason"]) for c in pool] == [(customer.id, "30天未跟进，自动释放")]

    sent = len(fake_wecom.messages)
    timers.enqueue(jobs.run_timers)
    _work(runtime)
    assert len(fake_wecom.messages) == sent
    assert client.get("/api/v1/pool", headers=rep_headers).json["items"] == pool
