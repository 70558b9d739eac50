"""SQLAlchemy tables, the engine/session factory and Alembic migrations."""

from models.audit import AuditEntry
from models.base import Base, epoch_microseconds
from models.chat import ArchiveConsent, ArchiveCursor, ArchiveMessage, ChatWindow
from models.contact_stats import ContactStat
from models.customers import Customer, CustomerTag, CustomField
from models.db import Database
from models.emails import EmailTemplate, EmailTemplateAttachment, OutgoingEmail
from models.followups import Attachment, FollowUp
from models.imports import ImportJob
from models.inbound import ContactEvent, InboundMessage
from models.orders import ApprovalNode, Order, OrderStep
from models.outbox import OutboxMessage
from models.pool import PoolEvent
from models.recordings import Recording
from models.rules import RuleSetVersion, TimerFiring
from models.similar import CustomerDocument, CustomerTerm
from models.stages import StageChange
from models.tasks import Task
from models.users import Team, User

__all__ = [
    "ApprovalNode",
    "ArchiveConsent",
    "ArchiveCursor",
    "ArchiveMessage",
    "Attachment",
    "AuditEntry",
    "Base",
    "ChatWindow",
    "ContactStat",
    "ContactEvent",
    "Customer",
    "CustomerDocument",
    "CustomerTag",
    "CustomerTerm",
    "CustomField",
    "Database",
    "EmailTemplate",
    "EmailTemplateAttachment",
    "FollowUp",
    "ImportJob",
    "InboundMessage",
    "Order",
    "OrderStep",
    "OutboxMessage",
    "OutgoingEmail",
    "PoolEvent",
    "Recording",
    "RuleSetVersion",
    "StageChange",
    "Task",
    "Team",
    "TimerFiring",
    "User",
    "epoch_microseconds",
]
