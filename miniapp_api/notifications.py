"""/notifications: WeCom messages to people in scope, and a manager's retry of a failed one."""

from __future__ import annotations

from typing import Any

from crm import notifications
from miniapp_api import api
from miniapp_api.context import actor, now, session
from miniapp_api.routing import operation
from miniapp_api.schemas import NotificationListQuery, NotificationOut, NotificationPageOut


@operation(
    api,
    "GET",
    "/notifications",
    summary="企业微信通知及发送状态（权限范围内）",
    tag="notifications",
    query=NotificationListQuery,
    response=NotificationPageOut,
)
def list_notifications(query: NotificationListQuery) -> Any:
    return notifications.list_messages(
        session(), actor=actor(), status=query.status, page=query.page, page_size=query.page_size
    )


@operation(
    api,
    "POST",
    "/notifications/{message_id}/retry",
    summary="重发发送失败的通知（主管、老板）",
    tag="notifications",
    response=NotificationOut,
)
def retry_notification(message_id: int) -> Any:
    return notifications.retry(session(), actor=actor(), message_id=message_id, now=now())
