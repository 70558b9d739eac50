"""A WeCom outage run end to end (callbacks stored, the inbound and outbox jobs failing and
retrying, the API asked meanwhile): nothing it writes anywhere shows a credential."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from fake_wecom.server import FakeWeCom
from models import InboundMessage, OutboxMessage
from tests.factories import make_company, sign_in
from wecom import WeComClient
from workers import inbound as inbound_jobs

# A credential field whose value is still there; "access_token=***" is what redaction leaves.
CREDENTIAL_FIELD = re.compile(r"(corpsecret|access_token)=(?!\*\*\*)")


@pytest.fixture
def debug_log(tmp_path: Path) -> Iterator[Path]:
    """Everything every logger says at DEBUG, into a file, as `wecrm worker -v` would."""
    path = tmp_path / "worker.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield path
    root.removeHandler(handler)
    root.setLevel(level)
    handler.close()


def _added_contact(rep_userid: str, external_userid: str) -> dict[str, str]:
    """A rep added a WeChat customer: handling it asks WeCom for the profile."""
    return {
        "Event": "change_external_contact",
        "ChangeType": "add_external_contact",
        "UserID": rep_userid,
        "ExternalUserID": external_userid,
    }


def _live_token(runtime) -> str:
    (key,) = [k for k in runtime.redis.scan_iter() if k.endswith(b"_access_token")]
    return json.loads(runtime.redis.get(key))


def test_a_wecom_outage_writes_no_credential_to_logs_stored_errors_api_or_redis_keys(
    runtime, session, clock, fake_wecom: FakeWeCom, wecom_side, client, debug_log, monkeypatch
):
    company = make_company(session)
    rep = company.reps[0][0]
    boss_headers = sign_in(client, fake_wecom, company.boss)
    assert wecom_side.send_text(rep.wecom_userid, "#帮助#")  # WeCom up: a token is live
    token = _live_token(runtime)
    answers = []

    # WeCom answers HTTP 503: wechatpy's error chains a requests error quoting the URL.
    fake_wecom.set_unreachable(True)
    for n in range(2):
        wecom_side.post(wecom_side.event_fields("sys", _added_contact(rep.wecom_userid, f"wm{n}")))
    wecom_side.post(wecom_side.text_fields(rep.wecom_userid, "#帮助#"))  # its reply waits
    wecom_side.work()
    answers.append(client.post("/api/v1/auth/login", json={"code": "any"}))

    # WeCom's port closed: the connection error quotes the URL with the cached token, then,
    # with the token gone, the gettoken URL with the secret.
    closed = WeComClient(
        corp_id=fake_wecom.corp_id,
        secret=fake_wecom.secret,
        agent_id=fake_wecom.agent_id,
        api_base="http://127.0.0.1:9/cgi-bin/",  # discard port: connection refused
        redis=runtime.redis,
        timeout=2.0,
    )
    monkeypatch.setitem(runtime.__dict__, "wecom", closed)
    clock.advance(seconds=inbound_jobs.SWEEP_AFTER_SECONDS + 1)
    wecom_side.sweep()
    for key in runtime.redis.scan_iter("*_access_token"):
        runtime.redis.delete(key)
    clock.advance(minutes=10)
    wecom_side.sweep()
    closed.close()
    answers.append(client.get("/api/v1/notifications", headers=boss_headers))

    session.rollback()
    inbound_errors = list(session.scalars(select(InboundMessage.last_error)))
    outbox_errors = list(session.scalars(select(OutboxMessage.last_error)))
    log = debug_log.read_text(encoding="utf-8")
    # The run did fail the way the issue saw it, with tracebacks in the log.
    assert "inbound message" in log and "Traceback" in log and "ConnectionError" in log
    assert any("ConnectionError" in (e or "") for e in inbound_errors)
    assert any("503" in (e or "") for e in outbox_errors + inbound_errors)
    assert answers[0].status_code == 503 and answers[1].status_code == 200

    written = {
        "log": log,
        "inbound errors": json.dumps(inbound_errors, ensure_ascii=False),
        "outbox errors": json.dumps(outbox_errors, ensure_ascii=False),
        "API answers": "\n".join(a.get_data(as_text=True) for a in answers),
        "Redis keys": "\n".join(k.decode(errors="replace") for k in runtime.redis.scan_iter()),
    }
    for where, text in written.items():
        assert fake_wecom.secret not in text, where
        assert fake_wecom.secret[:10] not in text, where
        assert token not in text, where
        assert not CREDENTIAL_FIELD.search(text), where
