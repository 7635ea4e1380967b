"""The audit log: one append-only event per sensitive action or read."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from lms.db import Base, UTCDateTime


class AuditEvent(Base):
    """Who did what, when, from where, and how it ended."""

    __tablename__ = "audit_event"
    __table_args__ = (
        # Per-IP sign-in throttling counts recent failures of one action from one address.
        Index("ix_audit_event_action_ip_at", "action", "ip", "at"),
        # An account's history ("member:12") on the administrator's page.
        Index("ix_audit_event_target", "target"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    #: None for anonymous actions such as a failed sign-in.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    #: Dotted verb, e.g. "auth.sign_in", "ack.sign", "receipt.download".
    action: Mapped[str] = mapped_column(String(60), index=True)
    #: What was acted on, e.g. "acknowledgment:12".
    target: Mapped[str | None] = mapped_column(String(120))
    ip: Mapped[str | None] = mapped_column(String(64))
    #: "success" or "failure".
    outcome: Mapped[str] = mapped_column(String(20), default="success")
    #: Extra facts; never a password or token.
    details: Mapped[dict | None] = mapped_column(JSON)
