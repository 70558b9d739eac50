"""Customer imports from Excel/CSV, with their per-row report."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, JSONType, UTCDateTime


class ImportStatus(StrEnum):
    QUEUED = "queued"  # uploaded, waiting for the worker
    RUNNING = "running"
    DONE = "done"  # the rows landed with their report (some rows may be errors)
    # The file was refused (nothing landed), or the import stopped half-way: the rows of the
    # batches written before stay, and the report's last line says where it stopped and why.
    FAILED = "failed"


class ImportJob(Base):
    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(String(255))
    on_duplicate: Mapped[str] = mapped_column(String(8))  # merge / skip
    status: Mapped[str] = mapped_column(String(16), default=ImportStatus.QUEUED)
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    merged_count: Mapped[int] = mapped_column(Integer, default=0)
    skipped_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)  # committed with the rows
    # Renewed with every batch written; a running import whose worker died stops renewing it,
    # and the periodic sweep (workers/jobs.py) fails it.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    report: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
