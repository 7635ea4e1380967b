"""HR and records: finding a member, their acknowledgment history, and "as of date D" answers."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.sql import ColumnElement

from lms.models import (
    Acknowledgment,
    AcknowledgmentVoid,
    Assignment,
    Cycle,
    Member,
    Policy,
    PolicyVersion,
    QuizAttempt,
)
from lms.services.clock import local_iso
from lms.services.personnel_history import MemberState, state_on


@dataclass
class AcknowledgmentEntry:
    """One acknowledgment on a member's record, with its void if it was corrected."""

    ack: Acknowledgment
    cycle_name: str
    void: AcknowledgmentVoid | None

    @property
    def live(self) -> bool:
        return self.void is None


@dataclass
class MemberRecord:
    """A member and every acknowledgment they ever signed, newest first."""

    member: Member
    acknowledgments: list[AcknowledgmentEntry]


@dataclass
class AsOfEntry:
    """For one policy on date D: the version in force, and the member's standing on it."""

    policy: Policy
    #: None when no version of the policy was in force yet on D.
    version: PolicyVersion | None
    #: The acknowledgment of that version that stood at the end of D, if any.
    ack: Acknowledgment | None = None
    #: A void of ``ack`` written after D (the record counted on D but no longer does).
    later_void: AcknowledgmentVoid | None = None
    #: When nothing stood on D: the latest acknowledgment of that version signed by then but
    #: already voided by then, with its void, so the "No" says why.
    voided: tuple[Acknowledgment, AcknowledgmentVoid] | None = None
    #: The passed quiz attempt for that version submitted by the end of D, if any.
    attempt: QuizAttempt | None = None
    #: ``attempt.submitted_at`` in department time, ISO 8601 with offset.
    attempt_submitted_local: str | None = None

    @property
    def acknowledged(self) -> bool:
        return self.ack is not None

    @property
    def quiz_passed(self) -> bool:
        return self.attempt is not None


@dataclass
class AsOfReport:
    """The answer to "as of date D, had member M acknowledged the version then in effect?"."""

    member: Member
    on: date
    timezone: str
    #: The first instant after D in department time, as UTC; records before it count.
    cutoff: datetime
    #: The member's status, unit, shift, rank and supervisor as they stood on D (their history).
    standing: MemberState | None = None
    #: The supervisor they reported to on D, if any.
    supervisor: Member | None = None
    entries: list[AsOfEntry] = field(default_factory=list)

    @property
    def cutoff_local(self) -> str:
        return local_iso(self.cutoff, self.timezone)


def _like_prefix(text: str) -> str:
    """A LIKE pattern matching values that start with ``text`` (wildcards in it taken literally)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def search_members(session: Session, query: str, limit: int = 50) -> list[Member]:
    """Members whose badge starts with ``query``, or whose name matches it, separated ones included.

    Names match case-insensitively by prefix: "rive" finds Rivera; "rivera, al" and "al rivera" find
    Alex Rivera. Results are ordered by last name, first name, badge.
    """
    words = " ".join(query.replace(",", " , ").split())
    if not words.strip(" ,"):
        return []
    conditions: list[ColumnElement[bool]] = [Member.badge.like(_like_prefix(query.strip()), escape="\\")]
    if "," in words:
        last, _, first = (part.strip() for part in words.partition(","))
        name: ColumnElement[bool] = Member.last_name.ilike(_like_prefix(last), escape="\\")
        if first:
            name = and_(name, Member.first_name.ilike(_like_prefix(first), escape="\\"))
        conditions.append(name)
    else:
        parts = words.split()
        if len(parts) == 1:
            conditions += [Member.last_name.ilike(_like_prefix(parts[0]), escape="\\"),
                           Member.first_name.ilike(_like_prefix(parts[0]), escape="\\")]
        else:
            # "first last", with the last name allowed to hold spaces ("Ana de la Cruz").
            first, last = parts[0], " ".join(parts[1:])
            conditions.append(and_(Member.first_name.ilike(_like_prefix(first), escape="\\"),
                                   Member.last_name.ilike(_like_prefix(last), escape="\\")))
            # People also type "last first" without the comma.
            first, last = " ".join(parts[1:]), parts[0]
            conditions.append(and_(Member.first_name.ilike(_like_prefix(first), escape="\\"),
                                   Member.last_name.ilike(_like_prefix(last), escape="\\")))
    return list(session.scalars(
        select(Member).where(or_(*conditions))
        .order_by(Member.last_name, Member.first_name, Member.badge).limit(limit)))


def member_record(session: Session, member_id: int) -> MemberRecord | None:
    """The member and every acknowledgment they signed, across policies and versions, newest first,
    each with its void (if any); None if there is no such member."""
    member = session.get(Member, member_id)
    if member is None:
        return None
    rows = session.execute(
        select(Acknowledgment, Cycle.name, AcknowledgmentVoid)
        .join(Cycle, Cycle.id == Acknowledgment.cycle_id)
        .outerjoin(AcknowledgmentVoid, AcknowledgmentVoid.acknowledgment_id == Acknowledgment.id)
        .where(Acknowledgment.member_id == member_id)
        .options(joinedload(AcknowledgmentVoid.voided_by))
        .order_by(Acknowledgment.signed_at.desc(), Acknowledgment.id.desc()))
    return MemberRecord(member, [AcknowledgmentEntry(ack, cycle_name, void) for ack, cycle_name, void in rows])


def end_of_day(on: date, tz: str) -> datetime:
    """The first instant after ``on`` in the department's time zone (aware, UTC)."""
    local = datetime.combine(on + timedelta(days=1), time(0), tzinfo=ZoneInfo(tz))
    return local.astimezone(ZoneInfo("UTC"))


def as_of(session: Session, member_id: int, on: date, tz: str) -> AsOfReport | None:
    """For each policy, the version in force on ``on`` and whether, by the end of that day in the
    department's time, the member had a standing acknowledgment of it and a passed quiz.

    An acknowledgment counts if it was signed by then and not voided by then; one voided later is
    reported with that later void, because on D it still stood. When none counts, the last one
    voided by then is reported with its void, so the "No" says why. Where several count, the earliest
    one never voided is shown (else the earliest), so the answer says since when. The quiz shown is
    the attempt that acknowledgment rests on, or else the first passed attempt submitted by then.
    Returns None if there is no such member.
    """
    member = session.get(Member, member_id)
    if member is None:
        return None
    cutoff = end_of_day(on, tz)
    standing = state_on(session, member_id, on)
    report = AsOfReport(member=member, on=on, timezone=tz, cutoff=cutoff, standing=standing,
                        supervisor=session.get(Member, standing.supervisor_id) if standing and standing.supervisor_id else None)

    # The version of each policy in force on D (cycles.version_in_force for every policy at once):
    # the latest effective on or before D, from a grouped subquery that both databases run.
    in_force = (select(PolicyVersion.policy_id, func.max(PolicyVersion.effective).label("effective"))
                .where(PolicyVersion.effective <= on).group_by(PolicyVersion.policy_id).subquery())
    rows = session.execute(
        select(Policy, PolicyVersion)
        .outerjoin(in_force, in_force.c.policy_id == Policy.id)
        .outerjoin(PolicyVersion, and_(PolicyVersion.policy_id == Policy.id,
                                       PolicyVersion.effective == in_force.c.effective))
        .order_by(Policy.id)).all()
    version_ids = [v.id for _, v in rows if v is not None]

    acks: dict[int, list[tuple[Acknowledgment, AcknowledgmentVoid | None]]] = {}
    voided_by_then: dict[int, tuple[Acknowledgment, AcknowledgmentVoid]] = {}
    if version_ids:
        signed = session.execute(
            select(Acknowledgment, AcknowledgmentVoid)
            .outerjoin(AcknowledgmentVoid, AcknowledgmentVoid.acknowledgment_id == Acknowledgment.id)
            .where(Acknowledgment.member_id == member_id,
                   Acknowledgment.policy_version_id.in_(version_ids),
                   Acknowledgment.signed_at < cutoff)
            # Never-voided first, then the earliest signature.
            .order_by(AcknowledgmentVoid.id.is_not(None), Acknowledgment.signed_at, Acknowledgment.id))
        for ack, void in signed:
            if void is None or void.voided_at >= cutoff:
                acks.setdefault(ack.policy_version_id, []).append((ack, void))
            else:  # the later signature wins, so the answer names the last one voided
                voided_by_then[ack.policy_version_id] = (ack, void)
    attempts: dict[int, list[QuizAttempt]] = {}
    if version_ids:
        passed = session.execute(
            select(QuizAttempt, Assignment.policy_version_id).join(Assignment)
            .where(Assignment.member_id == member_id, Assignment.policy_version_id.in_(version_ids),
                   QuizAttempt.passed.is_(True), QuizAttempt.submitted_at < cutoff)
            .order_by(QuizAttempt.submitted_at, QuizAttempt.id))
        for attempt, version_id in passed:
            attempts.setdefault(version_id, []).append(attempt)

    for policy, version in rows:
        entry = AsOfEntry(policy=policy, version=version)
        if version is not None:
            if acks.get(version.id):
                entry.ack, entry.later_void = acks[version.id][0]
            else:
                entry.voided = voided_by_then.get(version.id)
            candidates = attempts.get(version.id, [])
            if entry.ack is not None:
                entry.attempt = next((a for a in candidates if a.id == entry.ack.quiz_attempt_id), None)
            entry.attempt = entry.attempt or (candidates[0] if candidates else None)
            if entry.attempt is not None and entry.attempt.submitted_at is not None:
                entry.attempt_submitted_local = local_iso(entry.attempt.submitted_at, tz)
        report.entries.append(entry)
    return report
