"""The similar-deals index (crm/similar.py): each customer's words and profile as term counts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class CustomerDocument(Base):
    """One customer's indexed document: its length (sum of its term counts) for BM25."""

    __tablename__ = "customer_documents"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    length: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CustomerTerm(Base):
    """A term of a customer's document and how often it occurs (a posting)."""

    __tablename__ = "customer_terms"
    # Scoring reads the postings of a few query terms across customers.
    __table_args__ = (Index("ix_customer_terms_term", "term", "customer_id"),)

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    term: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
