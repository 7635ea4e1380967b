"""Extra quiz attempts: a coordinator unblocks a member who used every attempt without passing.

A grant names how many attempts and why, is confirmed with the coordinator's own password (a
wrong one counts toward lockout, as at signing), is a record of its own and an audit event, and
is counted by the roster (``Assignment.extra_attempts``). Nobody grants attempts to themselves.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from lms.models import (
    Assignment,
    AttemptGrant,
    Cycle,
    Member,
    MemberRole,
    PolicyVersion,
    QuizAttempt,
)
from lms.services.accounts import password_matches
from lms.services.audit import record_event
from lms.services.quiz import submitted_attempts

#: The most attempts one grant may add: enough for any retake plan, small enough that a typo
#: (50 for 5) is refused rather than recorded.
MAX_ATTEMPTS_PER_GRANT = 10
#: Roles that may grant attempts.
GRANTING_ROLES = ("coordinator", "admin")


class GrantError(ValueError):
    """The grant was refused; ``problems`` maps a form field (or None) to what is wrong."""

    def __init__(self, problems: dict[str | None, str]):
        super().__init__("; ".join(problems.values()))
        self.problems = problems


def _may_grant(granted_by: Member) -> None:
    if not granted_by.is_active or not any(granted_by.has_role(role) for role in GRANTING_ROLES):
        raise GrantError({None: "Only a training coordinator may grant quiz attempts."})


def _grant_problems(granted_by: Member, password: str, attempts: int, reason: str) -> tuple[dict[str | None, str], str]:
    """What is wrong with the grant's own fields (attempts, reason, password), and the reason
    with its whitespace tidied."""
    problems: dict[str | None, str] = {}
    if not isinstance(attempts, int) or isinstance(attempts, bool) or \
            not 1 <= attempts <= MAX_ATTEMPTS_PER_GRANT:
        problems["attempts"] = f"Grant from 1 to {MAX_ATTEMPTS_PER_GRANT} attempts."
    reason = " ".join((reason or "").split())
    if not reason:
        problems["reason"] = "Give the reason for the extra attempts; it is kept on the record."
    elif len(reason) > 500:
        problems["reason"] = "Keep the reason under 500 characters."
    if not password_matches(granted_by, password or ""):
        problems["password"] = "That is not your current password."
    return problems, reason


def _record_grant(session: Session, assignment: Assignment, granted_by: Member, attempts: int, reason: str,
                  now: datetime, ip: str | None, via: str | None = None) -> AttemptGrant:
    grant = AttemptGrant(assignment_id=assignment.id, attempts=attempts, reason=reason,
                         granted_by_id=granted_by.id, granted_at=now)
    session.add(grant)
    session.flush()
    version = assignment.policy_version
    details = {"badge": assignment.member.badge, "cycle": assignment.cycle_id, "cycle_name": assignment.cycle.name,
               "policy": version.policy_id, "version": version.effective.isoformat(),
               "attempts": attempts, "reason": reason, "grant_id": grant.id}
    if via:
        details["via"] = via
    record_event(session, "quiz.grant_attempts", at=now, actor_id=granted_by.id,
                 target=f"assignment:{assignment.id}", ip=ip, details=details)
    return grant


def grant_attempts(session: Session, *, assignment: Assignment, granted_by: Member, password: str,
                   attempts: int, reason: str, now: datetime, ip: str | None) -> AttemptGrant:
    """Grant ``attempts`` extra quiz attempts on ``assignment``, for ``reason``.

    Raises GrantError naming every problem and writes nothing then; a wrong ``password`` is
    reported under the ``password`` field so the caller can count it toward lockout. The caller
    commits.
    """
    _may_grant(granted_by)
    if granted_by.id == assignment.member_id:
        raise GrantError({None: "You cannot grant quiz attempts to yourself; ask another coordinator."})
    if assignment.superseded_at is not None:
        raise GrantError({None: "This assignment was replaced by a later policy version; "
                                "grant attempts on the current one."})
    if any(a.passed for a in submitted_attempts(session, assignment.id)):
        raise GrantError({None: f"{assignment.member.full_name} has already passed this quiz."})
    problems, reason = _grant_problems(granted_by, password, attempts, reason)
    if problems:
        raise GrantError(problems)
    grant = _record_grant(session, assignment, granted_by, attempts, reason, now, ip)
    session.flush()
    return grant


def passed_assignments(session: Session, assignment_ids: list[int]) -> set[int]:
    """Those of ``assignment_ids`` whose quiz has a submitted, passed attempt (one query)."""
    if not assignment_ids:
        return set()
    return set(session.scalars(select(QuizAttempt.assignment_id).distinct().where(
        QuizAttempt.assignment_id.in_(assignment_ids), QuizAttempt.submitted_at.is_not(None),
        QuizAttempt.passed.is_(True))))


def grant_attempts_to_many(session: Session, *, assignment_ids: list[int], granted_by: Member, password: str,
                           attempts: int, reason: str, now: datetime, ip: str | None,
                           via: str = "roster action") -> list[AttemptGrant]:
    """grant_attempts for several assignments at once, all or none: the password is checked once,
    and any assignment that may not have attempts granted (the granter's own, replaced, or a quiz
    already passed) refuses the whole grant, naming it. One ``quiz.grant_attempts`` audit event
    per assignment, as for a single grant. The caller commits (or rolls back on GrantError)."""
    _may_grant(granted_by)
    problems, reason = _grant_problems(granted_by, password, attempts, reason)
    if problems:
        raise GrantError(problems)
    assignments = list(session.scalars(
        select(Assignment).where(Assignment.id.in_(assignment_ids))
        .options(joinedload(Assignment.member), joinedload(Assignment.cycle),
                 joinedload(Assignment.policy_version)).order_by(Assignment.id)))
    if len(assignments) != len(set(assignment_ids)):
        raise GrantError({None: "Some of the selected assignments no longer exist; check the list again."})
    passed = passed_assignments(session, [a.id for a in assignments])
    for assignment in assignments:
        if assignment.member_id == granted_by.id:
            raise GrantError({None: "You cannot grant quiz attempts to yourself; ask another coordinator."})
        if assignment.superseded_at is not None:
            raise GrantError({None: f"{assignment.member.full_name}'s assignment was replaced by a later "
                                    "policy version; check the list again."})
        if assignment.id in passed:
            raise GrantError({None: f"{assignment.member.full_name} has already passed this quiz."})
    grants = [_record_grant(session, a, granted_by, attempts, reason, now, ip, via) for a in assignments]
    session.flush()
    return grants


def attempt_grants(session: Session, assignment_ids: list[int]) -> dict[int, list[AttemptGrant]]:
    """The grants of each of ``assignment_ids``, oldest first, with who granted them."""
    grants: dict[int, list[AttemptGrant]] = {i: [] for i in assignment_ids}
    for grant in session.scalars(select(AttemptGrant).where(AttemptGrant.assignment_id.in_(assignment_ids))
                                 .options(joinedload(AttemptGrant.granted_by))
                                 .order_by(AttemptGrant.granted_at, AttemptGrant.id)):
        grants[grant.assignment_id].append(grant)
    return grants


def training_contacts(session: Session, *, name: str | None, email: str | None) -> list[tuple[str, str | None]]:
    """Whom a member asks about their training: the configured contact (name and/or e-mail) if
    set, otherwise the active training coordinators on record, as (name, e-mail) pairs."""
    if name or email:
        return [(name or email or "", email)]
    # Names and addresses only: whole members would load each one's roles too, on every quiz page.
    coordinators = session.execute(
        select(Member.first_name, Member.last_name, Member.email).join(MemberRole, MemberRole.member_id == Member.id)
        .where(MemberRole.role == "coordinator", Member.status == "active")
        .order_by(Member.last_name, Member.first_name, Member.badge).limit(5))
    return [(f"{first} {last}", email) for first, last, email in coordinators]


def find_assignment(session: Session, *, cycle: Cycle, badge: str, policy_id: str | None) -> Assignment:
    """The member's current assignment in ``cycle`` (for ``policy_id``, which may be left out when
    the cycle assigns one policy); GrantError naming what is missing otherwise."""
    member = session.scalar(select(Member).where(Member.badge == badge))
    if member is None:
        raise GrantError({"badge": f"No member has badge {badge}."})
    query = (select(Assignment).join(PolicyVersion, PolicyVersion.id == Assignment.policy_version_id)
             .where(Assignment.cycle_id == cycle.id, Assignment.member_id == member.id,
                    Assignment.superseded_at.is_(None)).order_by(PolicyVersion.policy_id))
    if policy_id:
        query = query.where(PolicyVersion.policy_id == policy_id)
    found = list(session.scalars(query))
    if not found:
        what = f" for policy {policy_id}" if policy_id else ""
        raise GrantError({"badge": f"Badge {badge} has no assignment{what} in the {cycle.name} cycle."})
    if len(found) > 1:
        policies = ", ".join(a.policy_version.policy_id for a in found)
        raise GrantError({"policy": f"The {cycle.name} cycle assigns badge {badge} several policies "
                                    f"({policies}); name one with --policy."})
    return found[0]
