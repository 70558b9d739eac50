"""A voice message a member sends the app, read as their `#跟进# <客户> <内容>` command.

The message's audio is fetched from WeCom before the processing transaction (bot/dispatch.py),
kept and queued as a voice-command recording (crm/recordings.py), and the member is told it is
being recognised. The transcription job (workers/transcription.py) then calls `answer`: the
transcript runs through the very `#跟进#` command a typed message does (bot/commands.py), so a
customer named by several matches gets the same numbered candidates to pick from, and the
follow-up it logs keeps the audio as its attachment with the transcript. Speech has no spaces
where the member paused briefly, so the command first looks for a customer of theirs whose name
begins the transcript (the longest), and a method word run into the rest ("张三电话已报价").
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy.orm import Session

from bot import commands
from config import Settings
from crm import recordings
from crm.actors import Actor
from crm.notifications import notify
from crm.storage import FileStore
from models import User

RECEIVED_REPLY = "收到语音，正在识别…"
UNAVAILABLE_REPLY = "这条语音没能从企业微信取到，请再发一次。"
HEARD_NOTHING_REPLY = "没听清这条语音，请再说一遍，或发送文字命令 #跟进# <客户> <内容>。"
NOT_LOGGED_REPLY = "没听清要记到哪里。语音识别为：「{transcript}」\n{reply}"
# Whisper punctuates what it hears; the command reads words between spaces. Full-width marks
# always separate; ASCII ones only before a space or the end, so "3.5万" stays whole.
_PAUSES = re.compile(r"[，。！？、；：]+|[,.!?;:]+(?=\s|$)")


def spoken_command(transcript: str) -> str:
    """The `#跟进#` command a transcript says:
    "张三，电话，已经报价了。" → "#跟进# 张三 电话 已经报价了"."""
    return f"#跟进# {' '.join(_PAUSES.sub(' ', transcript).split())}"


def answer(
    session: Session,
    recording_id: int,
    transcript: str,
    now: datetime,
    *,
    store: FileStore,
    settings: Settings,
    language: str | None = None,
    duration_seconds: float | None = None,
) -> bool:
    """Keep a voice command's transcript, run it as its member's `#跟进#` command and queue the
    reply, in the caller's transaction; False when the recording was settled already (nothing
    runs twice)."""
    voice = recordings.finish_voice_command(
        session,
        recording_id,
        transcript,
        now,
        language=language,
        duration_seconds=duration_seconds,
    )
    if voice is None:
        return False
    member = session.get(User, voice.member_id)
    if member is None or not member.is_active:
        return True  # left the company meanwhile: the transcript is kept, nobody to answer
    said = voice.transcript or ""
    if not said:
        reply = HEARD_NOTHING_REPLY
    else:
        context = commands.Context(
            session=session,
            actor=Actor.of(member),
            now=now,
            store=store,
            max_attachment_bytes=settings.max_attachment_bytes,
            voice=voice,
        )
        reply = commands.run(context, spoken_command(said))
        if voice.follow_up_id is None:  # no follow-up logged: say what was heard, and why
            reply = NOT_LOGGED_REPLY.format(transcript=said, reply=reply)
    notify(
        session,
        recipients=[member],
        title="",
        text=reply,
        now=now,
        msgtype="text",
        dedupe_key=f"voice-reply:{voice.id}",
    )
    return True


def receive(
    session: Session, member: User, data: bytes | None, *, store: FileStore, now: datetime
) -> str:
    """Keep a member's voice message (`data`, None when WeCom would not give it) and queue its
    transcription; the immediate reply."""
    if data is None:
        return UNAVAILABLE_REPLY
    recordings.queue_voice_command(session, member=member, data=data, store=store, now=now)
    return RECEIVED_REPLY
