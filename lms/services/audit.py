"""The audit log: writing events, and reading them back for the administrator."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lms.models import AuditEvent, Member


def record_event(session: Session, action: str, *, at: datetime, actor_id: int | None = None,
                 target: str | None = None, ip: str | None = None, outcome: str = "success",
                 details: dict | None = None) -> AuditEvent:
    """Append one audit event; the caller's transaction decides whether it lands."""
    event = AuditEvent(action=action, at=at, actor_id=actor_id, target=target, ip=ip,
                       outcome=outcome, details=details)
    session.add(event)
    return event


@dataclass
class AuditFilters:
    """What an administrator narrowed the audit log to."""

    action: str | None = None
    actor_badge: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filtered(filters: AuditFilters):
    query = select(AuditEvent, Member.badge).outerjoin(Member, Member.id == AuditEvent.actor_id)
    if filters.action:
        query = query.where(AuditEvent.action.startswith(filters.action, autoescape=True))
    if filters.actor_badge:
        query = query.where(Member.badge == filters.actor_badge)
    if filters.outcome:
        query = query.where(AuditEvent.outcome == filters.outcome)
    if filters.since:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.until:
        query = query.where(AuditEvent.at < filters.until)
    return query


def search_events(session: Session, filters: AuditFilters, *, limit: int, offset: int = 0):
    """Matching events, newest first, each with the actor's badge; and the total count."""
    query = _filtered(filters)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.execute(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                           .limit(limit).offset(offset)).all()
    return rows, total


AUDIT_COLUMNS = ["id", "at", "actor_badge", "action", "target", "ip", "outcome", "details"]


def write_events_csv(session: Session, filters: AuditFilters, out, tz: str) -> int:
    """All matching events as CSV, oldest first, streamed; returns the row count."""
    writer = csv.writer(out)
    writer.writerow(AUDIT_COLUMNS)
    count = 0
    zone = ZoneInfo(tz)
    query = _filtered(filters).order_by(AuditEvent.at, AuditEvent.id).execution_options(yield_per=500)
    for event, badge in session.execute(query):
        values = [event.id, event.at.astimezone(zone).isoformat(timespec="seconds"), badge or "",
                  event.action, event.target or "", event.ip or "", event.outcome,
                  json.dumps(event.details, sort_keys=True) if event.details else ""]
        # Cells a spreadsheet would run as formulas are written as text.
        writer.writerow(["'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r") else v
                         for v in values])
        count += 1
    return count
