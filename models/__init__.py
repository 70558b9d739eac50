"""SQLAlchemy tables, the engine/session factory and Alembic migrations."""

from models.audit import AuditEntry
from models.base import Base
from models.customers import Customer, CustomerTag, CustomField
from models.db import Database
from models.followups import Attachment, FollowUp
from models.imports import ImportJob
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
    "StageChange",
    "Task",
    "Team",
    "User",
]
