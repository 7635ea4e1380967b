"""Roster actions: remind, exempt or grant extra quiz attempts to many members of a cycle at once,
chosen on the roster row by row or as "every row that matches the filters".

An action is planned, shown, then applied. The plan sorts the chosen rows into those it affects
and those it skips, each skip with its reason (already complete, already exempt, the coordinator
themself: nobody exempts themselves or grants themselves attempts), and carries a fingerprint of
exactly who is affected. Applying plans again from the same choice, now, and refuses when the
fingerprint differs: the confirmation page promised a list of people, and the action covers that
list or nothing (a member who finished meanwhile, or a filter that now matches someone new,
sends the coordinator back to a fresh list rather than acting on people they never saw).

Applying reuses the single actions' services (lms.services.cycles.grant_exemption,
lms.services.attempt_grants, lms.services.reminders), writes the same per-member audit events
they do (``exemption.grant``, ``quiz.grant_attempts``; reminders ``reminder.send`` when the worker
sends each) and one ``roster.action`` event for the whole press. Never commits.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from lms.models import Cycle, Member, Reminder
from lms.services import reminders as reminders_service
from lms.services.attempt_grants import grant_attempts_to_many, passed_assignments
from lms.services.audit import record_event
from lms.services.cycles import ExemptionError, exemption_reason, grant_exemption
from lms.services.roster import RosterFilters, roster_select

#: The actions, as the form names them, with what each does in words.
ACTIONS = {"remind": "Remind", "exempt": "Exempt", "grant": "Grant extra quiz attempts"}
#: Most rows a coordinator may tick one by one (the roster shows 50 a page).
MAX_TICKED_ROWS = 1000

#: Why a row or member is skipped, in the coordinator's words.
SKIP_COMPLETE = "already complete"
SKIP_EXEMPT = "already exempt"
SKIP_SELF = "you: nobody exempts themselves or grants themselves attempts; ask another coordinator"
SKIP_PASSED = "quiz already passed"
SKIP_NO_EMAIL = "no e-mail address on file"
SKIP_REMINDED = "already reminded today"
SKIP_GONE = "no longer on this cycle's roster"


class ActionError(ValueError):
    """A roster action that cannot be planned or applied as asked, with what is wrong."""


@dataclass(frozen=True)
class ActionRow:
    """A roster row an action affects or skips."""

    assignment_id: int
    member_id: int
    badge: str
    last_name: str
    first_name: str
    policy: str
    status: str
    unit: str | None = None

    @property
    def name(self) -> str:
        """As the roster lists it: "Last, First"."""
        return f"{self.last_name}, {self.first_name}"


@dataclass
class ActionPlan:
    """Who an action affects and who it skips, and why."""

    action: str
    #: One entry per member (remind, exempt) or per assignment (grant), sorted by name.
    affected: list[ActionRow] = field(default_factory=list)
    #: (row, reason) pairs, sorted by name.
    skipped: list[tuple[ActionRow, str]] = field(default_factory=list)
    #: Ticked rows no longer on the roster (replaced by a new policy version, say).
    gone: int = 0

    @property
    def per_assignment(self) -> bool:
        """Whether the action acts on each assignment rather than each member."""
        return self.action == "grant"

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the action and exactly who it affects, to tell at confirm time whether the
        list shown is still the list."""
        keys = sorted(r.assignment_id if self.per_assignment else r.member_id for r in self.affected)
        return hashlib.sha256(f"{self.action}:{','.join(map(str, keys))}".encode()).hexdigest()

    def skipped_by_reason(self) -> dict[str, list[ActionRow]]:
        """The skipped rows grouped by reason, reasons in first-seen order."""
        grouped: dict[str, list[ActionRow]] = {}
        for row, reason in self.skipped:
            grouped.setdefault(reason, []).append(row)
        return grouped


def _chosen(session: Session, filters: RosterFilters, assignment_ids: list[int] | None, *, today: date,
            tz: str, max_members: int) -> tuple[list[ActionRow], int]:
    """The chosen rows of the roster of now, sorted by name, and how many ticked rows are gone.

    Ticked rows are looked up by id in the whole roster (a row ticked under "overdue" is still
    the coordinator's choice if the member has moved on since); "all that match" runs the filters
    again, now. Either way more than ``max_members`` members is refused before any row is read.
    """
    if filters.as_of is not None:
        raise ActionError("Actions work on the roster of now: clear “As of the end of” and choose again.")
    if assignment_ids is not None:
        filters = RosterFilters(cycle_id=filters.cycle_id)
    inner = roster_select(filters, today=today, tz=tz).subquery()
    where = [inner.c.assignment_id.in_(assignment_ids)] if assignment_ids is not None else []
    members = session.scalar(select(func.count(distinct(inner.c.member_id))).where(*where)) or 0
    if members > max_members:
        raise ActionError(f"This selection has {members:,} members; one action covers at most {max_members:,}. "
                          "Narrow the filters (by unit or shift, say) and act on each part in turn.")
    rows = [ActionRow(assignment_id=r.assignment_id, member_id=r.member_id, badge=r.badge,
                      last_name=r.last_name, first_name=r.first_name, policy=r.policy, status=r.status,
                      unit=r.unit)
            for r in session.execute(select(inner).where(*where).order_by(
                inner.c.last_name, inner.c.first_name, inner.c.badge, inner.c.policy))]
    gone = len(set(assignment_ids) - {r.assignment_id for r in rows}) if assignment_ids is not None else 0
    return rows, gone


def _by_member(rows: list[ActionRow]) -> dict[int, list[ActionRow]]:
    grouped: dict[int, list[ActionRow]] = {}
    for row in rows:
        grouped.setdefault(row.member_id, []).append(row)
    return grouped


def _done_reason(rows: list[ActionRow]) -> str | None:
    """Why a member whose rows these are needs no action, or None if some row is not done."""
    if any(r.status == "exempt" for r in rows):
        return SKIP_EXEMPT
    if all(r.status in ("complete", "complete_late") for r in rows):
        return SKIP_COMPLETE
    return None


def plan_action(session: Session, filters: RosterFilters, *, action: str, assignment_ids: list[int] | None,
                actor_id: int, today: date, tz: str, max_members: int) -> ActionPlan:
    """Who ``action`` would affect among the ticked rows (``assignment_ids``) or, when that is
    None, every row the filters match now; ActionError when it cannot be planned."""
    if action not in ACTIONS:
        raise ActionError(f"Choose one of the actions: {', '.join(ACTIONS.values())}.")
    rows, gone = _chosen(session, filters, assignment_ids, today=today, tz=tz, max_members=max_members)
    plan = ActionPlan(action=action, gone=gone)
    if action == "grant":
        passed = passed_assignments(session, [r.assignment_id for r in rows])
        for row in rows:
            reason = (SKIP_SELF if row.member_id == actor_id else _done_reason([row])
                      or (SKIP_PASSED if row.assignment_id in passed or row.status == "quiz_passed" else None))
            if reason:
                plan.skipped.append((row, reason))
            else:
                plan.affected.append(row)
        return plan
    members = _by_member(rows)
    contact = {}
    if action == "remind" and members:
        reminded = set(session.scalars(select(Reminder.member_id).where(
            Reminder.member_id.in_(list(members)), Reminder.sent_on == today)))
        contact = {member_id: (email, member_id in reminded) for member_id, email in session.execute(
            select(Member.id, Member.email).where(Member.id.in_(list(members))))}
    for member_id, member_rows in members.items():
        first = member_rows[0]
        reason = _done_reason(member_rows)
        if reason is None and action == "exempt" and member_id == actor_id:
            reason = SKIP_SELF
        if reason is None and action == "remind":
            email, reminded_today = contact.get(member_id, (None, False))
            reason = (SKIP_NO_EMAIL if not (email or "").strip() else SKIP_REMINDED if reminded_today else None)
        if reason:
            plan.skipped.append((first, reason))
        else:
            plan.affected.append(next(r for r in member_rows if r.status not in ("complete", "complete_late")))
    return plan


@dataclass
class ActionResult:
    """What applying an action did."""

    #: Members reminded or exempted, or assignments granted attempts.
    done: int
    #: Reminders someone else queued for today between the confirmation and this press.
    already_reminded: int = 0


def apply_action(session: Session, plan: ActionPlan, cycle: Cycle, *, actor: Member, now: datetime,
                 today: date, ip: str | None, reason: str = "", attempts: int = 0, password: str = "",
                 department: str = "", sender: str = "", base_url: str = "", tz: str = "UTC",
                 scope: dict | None = None) -> ActionResult:
    """Apply a plan: every affected member or assignment, or (raising) none.

    Raises ExemptionError or attempt_grants.GrantError (a wrong password under ``password``) and
    leaves the rollback to the caller; nothing is committed here. ``scope`` (the filters or the
    number of rows ticked) goes into the ``roster.action`` audit event."""
    if not plan.affected:
        raise ActionError("Nobody on this list can be acted on; go back to the roster and choose again.")
    result = ActionResult(done=len(plan.affected))
    details: dict = {"cycle": cycle.id, "cycle_name": cycle.name, "action": plan.action, "affected": len(plan.affected),
                     "skipped": {reason: len(rows) for reason, rows in plan.skipped_by_reason().items()},
                     **(scope or {})}
    if plan.action == "exempt":
        reason = exemption_reason(reason)
        members = {m.id: m for m in session.scalars(
            select(Member).where(Member.id.in_([r.member_id for r in plan.affected])))}
        for row in plan.affected:
            member = members.get(row.member_id)
            if member is None:
                raise ExemptionError(f"{row.name} is no longer on record")
            exemption = grant_exemption(session, cycle=cycle, member=member, reason=reason,
                                        granted_by_id=actor.id, now=now)
            record_event(session, "exemption.grant", at=now, actor_id=actor.id, target=f"exemption:{exemption.id}",
                         ip=ip, details={"cycle": cycle.id, "cycle_name": cycle.name, "member_id": member.id,
                                         "badge": member.badge,
                                         "reason": exemption.reason, "via": "roster action"})
        details["reason"] = reason
    elif plan.action == "grant":
        grant_attempts_to_many(session, assignment_ids=[r.assignment_id for r in plan.affected], granted_by=actor,
                               password=password, attempts=attempts, reason=reason, now=now, ip=ip)
        details.update(attempts=attempts, reason=" ".join(reason.split()))
    else:
        wanted = {r.member_id for r in plan.affected}
        candidates = [c for c in reminders_service.reminder_candidates(session, cycle.id, today, tz)
                      if c.member_id in wanted]
        # The supervisor gets a copy when the cycle's reminder schedule says so, as from the reminders page.
        schedule = reminders_service.schedule_of(session, cycle)
        queued = reminders_service.queue_reminders(
            session, candidates, now=now, today=today, sent_by_id=actor.id, ip=ip, cycle=cycle,
            department=department, sender=sender, base_url=base_url, campaign="roster action",
            copy_supervisor=bool(schedule and schedule.copy_supervisor))
        result = ActionResult(done=len(queued.queued),
                              already_reminded=len(queued.already_reminded) + len(wanted) - len(candidates))
        details.update(queued=result.done, already_reminded=result.already_reminded)
    record_event(session, "roster.action", at=now, actor_id=actor.id, target=f"cycle:{cycle.id}", ip=ip,
                 details=details)
    session.flush()
    return result
