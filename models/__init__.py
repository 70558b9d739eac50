"""SQLAlchemy tables, the engine/session factory and Alembic migrations."""

from models.audit import AuditEntry
from models.base import Base
from models.customers import Customer, CustomerTag, CustomField
from models.db import Database
from models.followups import Attachment, FollowUp
from models.imports import ImportJob
from models.outbox import OutboxMessage
from models.pool import PoolEvent
from models.rules import RuleSetVersion, TimerFiring
from models.stages import StageChange
from models.tasks import Task
from models.users import Team, User

__all__ = [
    "Attachment",
    "AuditEntry",
    "Base",
    "Customer",
    "CustomField",
    "CustomerTag",
    "Database",
    "FollowUp",
    "ImportJob",
    "OutboxMessage",
    "PoolEvent",
    "RuleSetVersion",
    "StageChange",
    "Task",
    "Team",
    "TimerFiring",
    "User",
]
