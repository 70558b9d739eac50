"""What a view reaches for: the request's session, actor, clock and the process runtime."""

from __future__ import annotations

from datetime import datetime

from flask import current_app, g
from sqlalchemy.orm import Session

from crm.actors import Actor
from wecrm.runtime import Runtime


def runtime() -> Runtime:
    return current_app.extensions["wecrm"]


def session() -> Session:
    return g.session


def actor() -> Actor:
    return g.actor


def now() -> datetime:
    return g.now
