"""/capture: chat capture as managers see it. The preview tries a keyword dictionary on sample
messages before it is saved (the dictionary itself is the rule set of kind "keywords", edited
through /rule-sets); it changes nothing.

Who may try which dictionary follows the rule sets (crm/rules/publisher.py, `try_keywords`): a
manager their team's, the boss the company's or, naming `team_id`, a team's; reps are refused.
"""

from __future__ import annotations

from typing import Any

from crm.rules import publisher
from miniapp_api import api
from miniapp_api.context import actor, session
from miniapp_api.routing import operation
from miniapp_api.schemas import CapturePreviewIn, CapturePreviewOut


@operation(
    api,
    "POST",
    "/capture/preview",
    summary="试用关键词词库：每条聊天会命中哪些类别和词（不填词库则用当前生效的；不做任何修改）",
    tag="capture",
    body=CapturePreviewIn,
    response=CapturePreviewOut,
)
def preview_capture(body: CapturePreviewIn) -> Any:
    results = publisher.try_keywords(
        session(),
        actor=actor(),
        texts=body.messages,
        document=body.dictionary,
        team_id=body.team_id,
    )
    return {"results": results}
