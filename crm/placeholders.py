"""Text templates with named placeholders ({customer}, {客户}, …) that managers write.

Rule actions and email templates check their templates here when they are saved, so filling
one in later (`str.format_map`) never meets a placeholder it cannot fill.
"""

from __future__ import annotations

import string
from collections.abc import Mapping


def problem(template: str, known: Mapping[str, str]) -> str | None:
    """What is wrong with the placeholders of `template`, as the end of a Chinese sentence
    ("中的占位符「{x}」不认识…"), or None; `known` maps each placeholder to its label."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return "中的花括号不成对（要写花括号本身请用 {{ 和 }}）"
    for _literal, name, spec, conversion in parsed:
        if name is not None and (name not in known or spec or conversion):
            listed = "、".join(f"{{{key}}}（{label}）" for key, label in known.items())
            return f"中的占位符「{{{name}}}」不认识，可用：{listed}"
    return None
