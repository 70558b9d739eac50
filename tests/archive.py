"""Chat archive messages for tests, in WeCom's own decrypted shape (crm/chat_messages.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

CUSTOMER_ID = "wmQuoteCustomer01"


class Chat:
    """Archive messages in WeCom's own shape, a conversation at a time."""

    def __init__(self, start: datetime) -> None:
        self.at = start
        self.count = 0

    def _base(self, sender: str, to: list[str], msgtype: str, room: str, gap_s: float) -> dict:
        self.at += timedelta(seconds=gap_s)
        self.count += 1
        return {
            "msgid": f"msg{self.count}_{int(self.at.timestamp())}",
            "action": "send",
            "from": sender,
            "tolist": to,
            "roomid": room,
            "msgtime": int(self.at.timestamp() * 1000),
            "msgtype": msgtype,
        }

    def text(self, sender, to, content, *, room="", gap_s=60.0) -> dict:
        return {**self._base(sender, to, "text", room, gap_s), "text": {"content": content}}

    def file(self, sender, to, filename, *, room="", gap_s=60.0) -> dict:
        ext = filename.rsplit(".", 1)[-1]
        body = {"md5sum": "d41d8cd9", "filename": filename, "fileext": ext, "filesize": 20480}
        body["sdkfileid"] = "CtYBMzA2OTAyMDEwMjA0NjIzMDYwMDIwMTAwMDIwNDE0"
        return {**self._base(sender, to, "file", room, gap_s), "file": body}

    def voice(self, sender, to, *, gap_s=60.0) -> dict:
        body = {"md5sum": "aa", "voice_size": 4000, "play_length": 5, "sdkfileid": "vvv"}
        return {**self._base(sender, to, "voice", "", gap_s), "voice": body}

    def image(self, sender, to, *, gap_s=60.0) -> dict:
        body = {"md5sum": "bb", "filesize": 1000, "sdkfileid": "iii"}
        return {**self._base(sender, to, "image", "", gap_s), "image": body}

    def mixed(self, sender, to, texts: list[str], *, gap_s=60.0) -> dict:
        items = [{"type": "text", "content": json.dumps({"content": t})} for t in texts]
        items.append({"type": "image", "content": json.dumps({"md5sum": "c", "filesize": 9})})
        return {**self._base(sender, to, "mixed", "", gap_s), "mixed": {"item": items}}

    def recall(self, sender, to, target: dict, *, gap_s=30.0) -> dict:
        base = self._base(sender, to, "revoke", "", gap_s)
        return {**base, "action": "recall", "revoke": {"pre_msgid": target["msgid"]}}

    def switch(self, user: str) -> dict:
        self.count += 1
        return {
            "msgid": f"switch{self.count}",
            "action": "switch",
            "time": int(self.at.timestamp() * 1000),
            "user": user,
        }

    def quote(self, rep: str, customer: str = CUSTOMER_ID) -> list[dict]:
        return [
            self.text(rep, [customer], "王总您好，已发送正式报价单，请查收"),
            self.file(rep, [customer], "瓷砖报价单-2026.pdf"),
            self.text(customer, [rep], "收到，我看一下"),
        ]
