"""WeCom's msgaudit_notify event wakes the archive puller (workers/archive.py)."""

from __future__ import annotations

from rq import Queue

from workers import archive, queues


def test_msgaudit_notify_is_acknowledged_and_queues_one_pull(wecom_side, runtime):
    event = {"Event": "msgaudit_notify"}
    assert wecom_side.post(wecom_side.event_fields("sys", event)).status_code == 200
    assert wecom_side.post(wecom_side.event_fields("sys", event)).status_code == 200
    wecom_side.work()
    jobs = Queue(queues.CAPTURE, connection=runtime.redis).jobs
    # Two wake-ups while the first pull is still queued: one pull fetches for both.
    assert [job.func for job in jobs] == [archive.pull_archive]
