"""Writing audit events."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from lms.models import AuditEvent


def record_event(session: Session, action: str, *, at: datetime, actor_id: int | None = None,
                 target: str | None = None, ip: str | None = None, outcome: str = "success",
                 details: dict | None = None) -> AuditEvent:
    """Append one audit event; the caller's transaction decides whether it lands."""
    event = AuditEvent(action=action, at=at, actor_id=actor_id, target=target, ip=ip,
                       outcome=outcome, details=details)
    session.add(event)
    return event
