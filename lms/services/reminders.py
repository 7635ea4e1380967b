"""Reminder e-mails to members who are overdue or have not started a cycle's training: who gets
one, what it says, and sending it — at most one per member per local day, each send audited.

Messages go through a transport: :class:`OutboxTransport` writes ``.eml`` files (the default, so a
demo sends nothing), :class:`SMTPTransport` hands them to a mail server.
"""
from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol

from sqlalchemy import case, delete, distinct, exists, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from lms.models import Cycle, Member, Policy, Reminder
from lms.services.audit import record_event
from lms.services.roster import RosterFilters, roster_select

#: The roster statuses that prompt a reminder.
REMINDED_STATUSES = ("overdue", "not_started")


@dataclass(frozen=True)
class DueItem:
    """One unfinished assignment a reminder is about."""

    assignment_id: int
    policy: str
    policy_title: str
    status: str
    due_date: date

    @property
    def path(self) -> str:
        """Where the member picks the assignment up (the officer's page)."""
        return f"/training/{self.assignment_id}"


@dataclass
class Candidate:
    """A member to remind, with the assignments that prompt it."""

    member_id: int
    badge: str
    first_name: str
    last_name: str
    email: str
    items: list[DueItem] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def status(self) -> str:
        """overdue if any assignment is, otherwise not_started."""
        return "overdue" if any(i.status == "overdue" for i in self.items) else "not_started"

    @property
    def due_date(self) -> date:
        """The earliest due date among the assignments."""
        return min(i.due_date for i in self.items)


@dataclass
class Skipped:
    """Members who are overdue or not started but get no reminder now."""

    #: Already reminded today (by anyone, for any cycle).
    already_reminded: int
    #: No e-mail address on file.
    no_email: int


@dataclass
class SendResult:
    """What a send did."""

    sent: list[Candidate] = field(default_factory=list)
    #: Reminded today by someone else between the preview and this send.
    already_reminded: list[Candidate] = field(default_factory=list)
    #: The member whose message the transport refused; sending stopped there.
    failed: Candidate | None = None
    error: str | None = None


def _due_rows(year: int, today: date, tz: str) -> Select:
    """Roster rows of the cycle that are overdue or not started, with the member's e-mail, the
    policy title, and whether the member was already reminded on ``today``."""
    roster = roster_select(RosterFilters(year=year, statuses=list(REMINDED_STATUSES)),
                           today=today, tz=tz).subquery()
    reminded = exists().where(Reminder.member_id == roster.c.member_id, Reminder.sent_on == today)
    return (select(roster.c.member_id, roster.c.badge, roster.c.first_name, roster.c.last_name,
                   Member.email, roster.c.status, roster.c.due_date, roster.c.assignment_id,
                   roster.c.policy, Policy.title.label("policy_title"), reminded.label("reminded"))
            .join(Member, Member.id == roster.c.member_id)
            .join(Policy, Policy.id == roster.c.policy))


def _no_email(column):
    return or_(column.is_(None), func.trim(column) == "")


def reminder_candidates(session: Session, year: int, today: date, tz: str) -> list[Candidate]:
    """Members of the cycle whose status is overdue or not_started on any assignment, who have
    an e-mail address and were not reminded on ``today`` (the department's local date); sorted
    by name."""
    inner = _due_rows(year, today, tz).subquery()
    rows = session.execute(
        select(inner).where(~_no_email(inner.c.email), inner.c.reminded.is_(False))
        .order_by(inner.c.last_name, inner.c.first_name, inner.c.badge, inner.c.policy))
    candidates: dict[int, Candidate] = {}
    for row in rows:
        candidate = candidates.get(row.member_id)
        if candidate is None:
            candidate = candidates[row.member_id] = Candidate(
                member_id=row.member_id, badge=row.badge, first_name=row.first_name,
                last_name=row.last_name, email=row.email.strip())
        candidate.items.append(DueItem(assignment_id=row.assignment_id, policy=row.policy,
                                       policy_title=row.policy_title, status=row.status,
                                       due_date=row.due_date))
    return list(candidates.values())


def skipped_counts(session: Session, year: int, today: date, tz: str) -> Skipped:
    """How many overdue or not-started members get no reminder: reminded today, or no e-mail."""
    inner = _due_rows(year, today, tz).subquery()
    no_email = _no_email(inner.c.email)
    reminded, missing = session.execute(select(
        func.count(distinct(case((~no_email & inner.c.reminded, inner.c.member_id)))),
        func.count(distinct(case((no_email, inner.c.member_id)))))).one()
    return Skipped(already_reminded=reminded, no_email=missing)


def build_message(member: Candidate, rows: Sequence[DueItem], cycle: Cycle, department: str,
                  sender: str, *, base_url: str = "") -> EmailMessage:
    """The plain-text reminder: what is due, by when, and where to do it.

    ``member`` needs ``first_name``, ``last_name`` and ``email``; links are ``base_url`` plus the
    assignment's path (just the path when no base URL is known).
    """
    overdue = any(r.status == "overdue" for r in rows)
    subject = (f"Overdue: {cycle.name} policy training" if overdue
               else f"Reminder: {cycle.name} policy training due {_long_date(min(r.due_date for r in rows))}")
    lines = [f"Dear {member.first_name} {member.last_name},", "",
             f"Our records show that your {cycle.name} policy training is not complete:", ""]
    for row in rows:
        when = (f"was due {row.due_date:%A}, {_long_date(row.due_date)}, and is overdue"
                if row.status == "overdue" else f"due {row.due_date:%A}, {_long_date(row.due_date)}; not started yet")
        link = (f"Continue at {base_url.rstrip('/')}{row.path}" if base_url
                else f"In Roll Call, open My training (page {row.path}).")
        lines += [f"  * Policy {row.policy} {row.policy_title}: {when}.", f"    {link}", ""]
    lines += ["Sign in to Roll Call, read the lessons, pass the quiz and sign the acknowledgment.",
              "If you are on leave or believe this is a mistake, contact your training coordinator.",
              "", f"Training coordinator, {department}", "",
              "This message was sent automatically by Roll Call; replies may not be read."]
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = member.email
    message.set_content("\n".join(lines) + "\n")
    return message


def _long_date(day: date) -> str:
    """E.g. "March 31, 2031" (strftime's %-d is not portable)."""
    return f"{day:%B} {day.day}, {day.year}"


class Transport(Protocol):
    """Something that delivers messages."""

    def send(self, message: EmailMessage) -> None: ...

    def close(self) -> None: ...


class OutboxTransport:
    """Writes each message as an ``.eml`` file in a folder instead of sending it."""

    name = "outbox"

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def send(self, message: EmailMessage) -> None:
        """Write the message atomically (a temporary file renamed), so a reader never sees half."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}.eml"
        fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(message.as_bytes())
            os.replace(temporary, self.folder / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"OutboxTransport({str(self.folder)!r})"


class SMTPTransport:
    """Sends through an SMTP server, one connection for a whole batch (opened on first send)."""

    name = "smtp"

    def __init__(self, host: str, port: int = 587, username: str | None = None,
                 password: str | None = None, use_tls: bool = True, sender: str | None = None,
                 timeout: float = 30.0):
        self.host, self.port, self.username = host, int(port), username
        self._password = password
        self.use_tls, self.sender, self.timeout = bool(use_tls), sender, timeout
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.use_tls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self._password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: EmailMessage) -> None:
        if self._smtp is None:
            self._smtp = self._connect()
        if self.sender and "From" not in message:
            message["From"] = self.sender
        self._smtp.send_message(message)

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except smtplib.SMTPException:
                self._smtp.close()
            self._smtp = None

    def __repr__(self) -> str:
        # Never the password.
        return (f"SMTPTransport(host={self.host!r}, port={self.port}, username={self.username!r}, "
                f"use_tls={self.use_tls})")


def transport_from_config(config: Mapping, instance_path: str | os.PathLike) -> Transport:
    """The transport the configuration asks for: MAIL_TRANSPORT "outbox" (``instance/outbox``)
    or "smtp" (SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_USE_TLS, MAIL_SENDER)."""
    kind = (config.get("MAIL_TRANSPORT") or "outbox").lower()
    if kind == "outbox":
        return OutboxTransport(Path(instance_path) / "outbox")
    if kind == "smtp":
        if not config.get("SMTP_HOST"):
            raise ValueError("MAIL_TRANSPORT is smtp but SMTP_HOST is not set")
        return SMTPTransport(config["SMTP_HOST"], int(config.get("SMTP_PORT") or 587),
                             config.get("SMTP_USERNAME") or None, config.get("SMTP_PASSWORD") or None,
                             _truthy(config.get("SMTP_USE_TLS", True)), config.get("MAIL_SENDER"))
    raise ValueError(f"MAIL_TRANSPORT must be outbox or smtp, not {kind!r}")


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


def _claim(session: Session, values: dict) -> int | None:
    """Insert the day's reminder row unless the member already has one; its id, or None.

    INSERT … ON CONFLICT DO NOTHING rather than catching IntegrityError in a SAVEPOINT: on SQLite
    the pysqlite driver opens no transaction before a SAVEPOINT, so releasing the first one would
    commit it behind the caller's back. On PostgreSQL a concurrent send waits for the other
    transaction on the unique index, then finds the row and skips the member.
    """
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise NotImplementedError(f"reminders have no conflict-free insert for {dialect}")
    statement = (insert(Reminder).values(**values)
                 .on_conflict_do_nothing(index_elements=["member_id", "sent_on"])
                 .returning(Reminder.id))
    return session.execute(statement).scalar()


def send_reminders(session: Session, candidates: Sequence[Candidate], *, transport: Transport,
                   now: datetime, today: date, sent_by_id: int | None, ip: str | None, cycle: Cycle,
                   department: str, sender: str, base_url: str = "") -> SendResult:
    """Remind each candidate: record the day's Reminder row, hand the message to the transport,
    and audit "reminder.send". A member who already has a reminder for ``today`` (a second
    coordinator sending at the same moment) is skipped without disturbing the others. If the
    transport fails, that member's row is removed, the failure audited, and sending stops (the
    server is most likely down for everyone); those sent so far stay recorded. Flushes, never
    commits: the caller commits once.
    """
    result = SendResult()
    for candidate in candidates:
        reminder_id = _claim(session, {"member_id": candidate.member_id, "cycle_id": cycle.id,
                                       "sent_on": today, "sent_at": now, "sent_by_id": sent_by_id,
                                       "status": candidate.status})
        if reminder_id is None:
            result.already_reminded.append(candidate)
            continue
        message = build_message(candidate, candidate.items, cycle, department, sender, base_url=base_url)
        message["Date"] = format_datetime(now)
        message["Message-ID"] = make_msgid(domain=_domain(sender))
        details = {"cycle": cycle.year, "badge": candidate.badge, "email": candidate.email,
                   "status": candidate.status, "policies": [i.policy for i in candidate.items],
                   "transport": getattr(transport, "name", type(transport).__name__),
                   "message_id": message["Message-ID"]}
        try:
            transport.send(message)
        except (OSError, smtplib.SMTPException) as exc:
            session.execute(delete(Reminder).where(Reminder.id == reminder_id))
            result.failed, result.error = candidate, f"{type(exc).__name__}: {exc}"
            record_event(session, "reminder.send", at=now, actor_id=sent_by_id,
                         target=f"member:{candidate.member_id}", ip=ip, outcome="failure",
                         details={**details, "error": result.error[:500]})
            break
        record_event(session, "reminder.send", at=now, actor_id=sent_by_id,
                     target=f"member:{candidate.member_id}", ip=ip,
                     details={**details, "reminder_id": reminder_id})
        result.sent.append(candidate)
    session.flush()
    return result


def _domain(sender: str) -> str:
    """The domain of the sender's address, for Message-IDs (avoids a slow getfqdn())."""
    address = parseaddr(sender)[1]
    return address.rpartition("@")[2] or "localhost"
