"""Reminder e-mails to members whose training is not done: who gets one, what it says, queueing
it for the worker (at most one per member per local day, enforced by the database), and each
cycle's reminder schedule (days before the due date, weekly while overdue).

A reminder is queued, not sent, in the coordinator's request: the Reminder row and its e-mail job
are written in one transaction, and the worker delivers it (lms.services.mail, lms.jobs).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import case, distinct, exists, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import Select

from lms.models import Cycle, Member, Policy, Reminder, ReminderSchedule
from lms.services.audit import record_event
from lms.services.clock import date_words

# The transports moved to lms.services.mail; imported here too for older callers.
from lms.services.mail import (  # noqa: F401
    Audit,
    OutboxTransport,
    SMTPTransport,
    Transport,
    queue_email,
    transport_from_config,
)
from lms.services.roster import RosterFilters, roster_select

#: The roster statuses that prompt a reminder: every member who is not done (complete,
#: complete_late and exempt are done), most urgent first.
REMINDED_STATUSES = ("overdue", "not_started", "in_progress", "quiz_failed", "quiz_passed")

#: What each status asks of the member, in the message.
_STATUS_LINES = {
    "not_started": "not started yet",
    "in_progress": "lessons in progress",
    "quiz_failed": "the quiz is not passed yet",
    "quiz_passed": "quiz passed; only your signature is left",
}


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
    #: The supervisor's address, for a copy when the schedule asks for one.
    supervisor_email: str | None = None
    items: list[DueItem] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def status(self) -> str:
        """The most urgent status among the assignments (overdue first, then the least advanced)."""
        return min((i.status for i in self.items), key=REMINDED_STATUSES.index)

    @property
    def due_date(self) -> date:
        """The earliest due date among the assignments."""
        return min(i.due_date for i in self.items)


@dataclass
class Skipped:
    """Members who are not done but get no reminder now."""

    #: Already reminded today (by anyone, for any cycle).
    already_reminded: int
    #: No e-mail address on file.
    no_email: int


@dataclass
class QueueResult:
    """What queueing reminders did."""

    queued: list[Candidate] = field(default_factory=list)
    #: Reminded today by someone else between the preview and this send.
    already_reminded: list[Candidate] = field(default_factory=list)


def _due_rows(cycle_id: int, today: date, tz: str, reports_to: str | None = None) -> Select:
    """Roster rows of the cycle that are not done, with the member's and the supervisor's
    e-mail, the policy title, and whether the member was already reminded on ``today``;
    ``reports_to`` (a supervisor's badge) keeps only the members who report to them."""
    roster = roster_select(RosterFilters(cycle_id=cycle_id, statuses=list(REMINDED_STATUSES), reports_to=reports_to),
                           today=today, tz=tz).subquery()
    reminded = exists().where(Reminder.member_id == roster.c.member_id, Reminder.sent_on == today)
    supervisor = aliased(Member)
    return (select(roster.c.member_id, roster.c.badge, roster.c.first_name, roster.c.last_name,
                   Member.email, supervisor.email.label("supervisor_email"), roster.c.status,
                   roster.c.due_date, roster.c.assignment_id, roster.c.policy,
                   Policy.title.label("policy_title"), reminded.label("reminded"))
            .join(Member, Member.id == roster.c.member_id)
            .outerjoin(supervisor, supervisor.id == Member.supervisor_id)
            .join(Policy, Policy.id == roster.c.policy))


def _no_email(column):
    return or_(column.is_(None), func.trim(column) == "")


def reminder_candidates(session: Session, cycle_id: int, today: date, tz: str,
                        reports_to: str | None = None) -> list[Candidate]:
    """Members of the cycle who are not done with some assignment (see REMINDED_STATUSES), have
    an e-mail address and were not reminded on ``today`` (the department's local date); sorted
    by name. ``reports_to`` (a supervisor's badge) keeps only the members who report to them."""
    inner = _due_rows(cycle_id, today, tz, reports_to).subquery()
    rows = session.execute(
        select(inner).where(~_no_email(inner.c.email), inner.c.reminded.is_(False))
        .order_by(inner.c.last_name, inner.c.first_name, inner.c.badge, inner.c.policy))
    candidates: dict[int, Candidate] = {}
    for row in rows:
        candidate = candidates.get(row.member_id)
        if candidate is None:
            candidate = candidates[row.member_id] = Candidate(
                member_id=row.member_id, badge=row.badge, first_name=row.first_name,
                last_name=row.last_name, email=row.email.strip(),
                supervisor_email=(row.supervisor_email or "").strip() or None)
        candidate.items.append(DueItem(assignment_id=row.assignment_id, policy=row.policy,
                                       policy_title=row.policy_title, status=row.status,
                                       due_date=row.due_date))
    return list(candidates.values())


def skipped_counts(session: Session, cycle_id: int, today: date, tz: str,
                   reports_to: str | None = None) -> Skipped:
    """How many members who are not done get no reminder: reminded today, or no e-mail
    (of those who report to ``reports_to``, if given)."""
    inner = _due_rows(cycle_id, today, tz, reports_to).subquery()
    no_email = _no_email(inner.c.email)
    reminded, missing = session.execute(select(
        func.count(distinct(case((~no_email & inner.c.reminded, inner.c.member_id)))),
        func.count(distinct(case((no_email, inner.c.member_id)))))).one()
    return Skipped(already_reminded=reminded, no_email=missing)


def build_message(member: Candidate, rows: Sequence[DueItem], cycle: Cycle, department: str,
                  sender: str, *, base_url: str = "", copy_to: str | None = None) -> EmailMessage:
    """The plain-text reminder: what is due, by when, and a link straight to it.

    ``member`` needs ``first_name``, ``last_name`` and ``email``; links are ``base_url`` (the
    PUBLIC_URL setting) plus the assignment's path (just the path when no base URL is known).
    ``copy_to`` (the supervisor) gets a copy.
    """
    overdue = any(r.status == "overdue" for r in rows)
    subject = (f"Overdue: {cycle.name} policy training" if overdue
               else f"Reminder: {cycle.name} policy training due {date_words(min(r.due_date for r in rows))}")
    lines = [f"Dear {member.first_name} {member.last_name},", "",
             f"Our records show that your {cycle.name} policy training is not complete:", ""]
    for row in rows:
        when = (f"was due {row.due_date:%A}, {date_words(row.due_date)}, and is overdue"
                if row.status == "overdue"
                else f"due {row.due_date:%A}, {date_words(row.due_date)}; {_STATUS_LINES.get(row.status, row.status)}")
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
    if copy_to and copy_to.lower() != member.email.lower():
        message["Cc"] = copy_to
    message.set_content("\n".join(lines) + "\n")
    return message


def _claim(session: Session, values: dict) -> int | None:
    """Insert the day's reminder row unless the member already has one; its id, or None.

    INSERT … ON CONFLICT DO NOTHING rather than catching IntegrityError in a SAVEPOINT: on SQLite
    the pysqlite driver opens no transaction before a SAVEPOINT, so releasing the first one would
    commit it behind the caller's back. On PostgreSQL a concurrent send waits for the other
    transaction on the unique index, then finds the row and skips the member.
    """
    dialect = session.get_bind().dialect.name
    insert: Callable[..., Any] | None = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise NotImplementedError(f"reminders have no conflict-free insert for {dialect}")
    statement = (insert(Reminder).values(**values)
                 .on_conflict_do_nothing(index_elements=["member_id", "sent_on"])
                 .returning(Reminder.id))
    return session.execute(statement).scalar()


def queue_reminders(session: Session, candidates: Sequence[Candidate], *, now: datetime, today: date,
                    sent_by_id: int | None, ip: str | None, cycle: Cycle, department: str, sender: str,
                    base_url: str, copy_supervisor: bool = False, campaign: str = "manual") -> QueueResult:
    """Queue a reminder for each candidate: the day's Reminder row and its e-mail job, in the
    caller's transaction. A member who already has a reminder for ``today`` (a second coordinator
    sending at the same moment, or the schedule) is skipped without disturbing the others: the
    database's unique key on (member, day) decides. The worker sends each message and audits
    "reminder.send" with the coordinator as the actor. Flushes, never commits.
    """
    result = QueueResult()
    for candidate in candidates:
        reminder_id = _claim(session, {"member_id": candidate.member_id, "cycle_id": cycle.id,
                                       "sent_on": today, "sent_at": now, "sent_by_id": sent_by_id,
                                       "status": candidate.status})
        if reminder_id is None:
            result.already_reminded.append(candidate)
            continue
        copy_to = candidate.supervisor_email if copy_supervisor else None
        message = build_message(candidate, candidate.items, cycle, department, sender,
                                base_url=base_url, copy_to=copy_to)
        details = {"cycle": cycle.id, "cycle_name": cycle.name, "badge": candidate.badge, "email": candidate.email,
                   "status": candidate.status, "policies": [i.policy for i in candidate.items],
                   "reminder_id": reminder_id, "campaign": campaign}
        if message["Cc"]:
            details["copy_to"] = str(message["Cc"])
        queue_email(session, message, key=f"reminder:{reminder_id}", now=now, sender=sender,
                    created_by_id=sent_by_id,
                    audit=Audit("reminder.send", sent_by_id, f"member:{candidate.member_id}", ip, details))
        result.queued.append(candidate)
    session.flush()
    return result


# --------------------------------------------------------------------------- the schedule

class ScheduleError(ValueError):
    """A reminder schedule that cannot be kept, with what is wrong."""


#: The furthest ahead of a due date a reminder can be scheduled.
MAX_DAYS_BEFORE = 365


def parse_days(text: str) -> list[int]:
    """"14, 7, 1" → [14, 7, 1]: whole days before the due date, largest first, no repeats.
    Empty means no reminders before the due date. Raises ScheduleError naming the bad part."""
    days: set[int] = set()
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isascii() or not part.isdigit():
            raise ScheduleError(f"“{part}” is not a number of days; write whole numbers separated "
                                "by commas, e.g. 14, 7, 1.")
        value = int(part)
        if not 0 <= value <= MAX_DAYS_BEFORE:
            raise ScheduleError(f"{value} days is out of range; use 0 (the due date) to {MAX_DAYS_BEFORE}.")
        days.add(value)
    return sorted(days, reverse=True)


def format_days(days: Sequence[int]) -> str:
    """[14, 7, 1] → "14, 7, 1"."""
    return ", ".join(str(d) for d in days)


def due_by_schedule(due_dates: Sequence[date], last_reminded: date | None, today: date,
                    days_before: Sequence[int], weekly_overdue: bool) -> bool:
    """Whether the schedule reminds a member today, given the due dates of their unfinished
    assignments and the day they were last reminded (by anyone, for anything).

    Before the due date, each number of days opens a stage on ``due - days``; a member not
    reminded since the current stage opened is reminded (so a day the worker missed is caught up
    the next day, and a member is never reminded twice in one stage). Once overdue, with
    ``weekly_overdue``: on the first day not reminded since the due date, then every seven days.
    """
    for due in due_dates:
        left = (due - today).days
        if left < 0:
            if weekly_overdue and (last_reminded is None or last_reminded <= due
                                   or (today - last_reminded).days >= 7):
                return True
            continue
        stages = [d for d in days_before if d >= left]
        if stages:
            opened = due - timedelta(days=min(stages))
            if last_reminded is None or last_reminded < opened:
                return True
    return False


def schedule_of(session: Session, cycle: Cycle) -> ReminderSchedule | None:
    """The cycle's reminder schedule, if the coordinator set one."""
    return session.get(ReminderSchedule, cycle.id)


def save_schedule(session: Session, cycle: Cycle, *, days_before: str, weekly_overdue: bool,
                  copy_supervisor: bool, now: datetime, actor_id: int | None, ip: str | None) -> ReminderSchedule:
    """Set the cycle's reminder schedule (ScheduleError on bad days); audited "reminder.schedule"."""
    days = parse_days(days_before)
    schedule = session.get(ReminderSchedule, cycle.id)
    if schedule is None:
        schedule = ReminderSchedule(cycle_id=cycle.id)
        session.add(schedule)
    schedule.days_before, schedule.weekly_overdue = format_days(days), bool(weekly_overdue)
    schedule.copy_supervisor, schedule.updated_at, schedule.updated_by_id = bool(copy_supervisor), now, actor_id
    record_event(session, "reminder.schedule", at=now, actor_id=actor_id, target=f"cycle:{cycle.id}", ip=ip,
                 details={"days_before": days, "weekly_overdue": bool(weekly_overdue),
                          "copy_supervisor": bool(copy_supervisor)})
    session.flush()
    return schedule


def last_reminded(session: Session, member_ids: Sequence[int]) -> dict[int, date]:
    """Each member's latest reminder day (any cycle)."""
    if not member_ids:
        return {}
    return dict(session.execute(select(Reminder.member_id, func.max(Reminder.sent_on))
                                .where(Reminder.member_id.in_(member_ids)).group_by(Reminder.member_id)).all())


def scheduled_candidates(session: Session, cycle: Cycle, schedule: ReminderSchedule, today: date,
                         tz: str) -> list[Candidate]:
    """The candidates the schedule reminds today (see due_by_schedule)."""
    candidates = reminder_candidates(session, cycle.id, today, tz)
    last = last_reminded(session, [c.member_id for c in candidates])
    days = parse_days(schedule.days_before)
    return [c for c in candidates
            if due_by_schedule([i.due_date for i in c.items], last.get(c.member_id), today, days,
                               schedule.weekly_overdue)]


def upcoming_dates(cycle: Cycle, schedule: ReminderSchedule, today: date) -> list[date]:
    """The cycle's scheduled reminder days from today on (by the cycle's due date; members with
    their own later due date follow their own)."""
    days = [cycle.due_date - timedelta(days=d) for d in parse_days(schedule.days_before)]
    return sorted(d for d in days if d >= today)


def run_campaigns(session: Session, *, now: datetime, today: date, tz: str, department: str,
                  sender: str, base_url: str) -> int:
    """Queue today's scheduled reminders for every open cycle that has a schedule (the worker's
    periodic task); how many were queued. Safe to run any number of times a day."""
    queued = 0
    rows = session.execute(select(Cycle, ReminderSchedule).join(ReminderSchedule, ReminderSchedule.cycle_id == Cycle.id)
                           .where(Cycle.closed_at.is_(None)).order_by(Cycle.year, Cycle.id)).all()
    for cycle, schedule in rows:
        candidates = scheduled_candidates(session, cycle, schedule, today, tz)
        if not candidates:
            continue
        result = queue_reminders(session, candidates, now=now, today=today, sent_by_id=None, ip=None,
                                 cycle=cycle, department=department, sender=sender, base_url=base_url,
                                 copy_supervisor=schedule.copy_supervisor, campaign="schedule")
        queued += len(result.queued)
        record_event(session, "reminder.campaign", at=now, target=f"cycle:{cycle.id}",
                     details={"queued": len(result.queued), "already_reminded": len(result.already_reminded)})
    session.flush()
    return queued
