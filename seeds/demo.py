"""Demo personnel and a realistic spread of progress through the current year's cycle."""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from faker import Faker
from sqlalchemy import select
from sqlalchemy.orm import Session

from lms.models import Assignment, Cycle, Member, MemberRole, Policy
from lms.services import quiz as quiz_service
from lms.services.accounts import hash_password
from lms.services.cycles import create_cycle, default_name
from lms.services.progress import mark_lesson_read
from lms.services.signing import SigningFacts, append_acknowledgment

DEMO_PASSWORD = "rollcall-demo-2026"

UNITS = {  # unit: share of the department
    "Patrol North": 0.22, "Patrol South": 0.22, "Traffic": 0.08, "Investigations": 0.12,
    "Special Operations": 0.07, "Community Policing": 0.07, "Records": 0.06,
    "Communications": 0.08, "Administration": 0.08,
}
CIVILIAN_UNITS = {"Records", "Communications", "Administration"}
SHIFTS = ["Day", "Afternoon", "Midnight"]
SWORN_RANKS = [("Officer", 0.72), ("Sergeant", 0.15), ("Lieutenant", 0.06), ("Commander", 0.03),
               ("Detective", 0.04)]
CIVILIAN_RANKS = [("Records Clerk", 0.4), ("Telecommunicator", 0.4), ("Analyst", 0.2)]
# Where the Faker personnel stand in the cycle; the demo logins are set apart below.
PROGRESS_SPREAD = [("not_started", 0.18), ("in_progress", 0.17), ("quiz_failed", 0.07),
                   ("quiz_passed", 0.08), ("complete", 0.50)]


@dataclass
class DemoLogin:
    badge: str
    name: str
    role: str
    about: str


DEMO_PEOPLE = [
    ("1001", "Dana", "Whitfield", "officer", "Patrol North", "Day", "Officer", "officer, nothing done yet"),
    ("1002", "Marcus", "Bell", "officer", "Patrol South", "Afternoon", "Officer", "officer, half way (lessons partly read)"),
    ("1003", "Renee", "Okafor", "coordinator", "Administration", "Day", "Lieutenant", "training coordinator"),
    ("1004", "Paul", "Lindqvist", "hr", "Administration", "Day", "Analyst", "HR / records"),
    ("1005", "Carmen", "Reyes", "admin", "Administration", "Day", "Commander", "administrator"),
    ("1006", "Tomas", "Reyna", "supervisor", "Patrol North", "Day", "Sergeant",
     "sergeant: his Patrol North squad's training"),
]
#: The demo sergeant and the most officers of his unit and shift put in his squad.
DEMO_SERGEANT = "1006"
SQUAD_SIZE = 8


def _weighted(rng: random.Random, pairs) -> str:
    names, weights = zip(*(pairs.items() if isinstance(pairs, dict) else pairs))
    return rng.choices(names, weights=weights)[0]


def seed_demo(session: Session, *, people: int, seed: int, now: datetime, tz: str,
              hash_method: str, department: str, sealer=None) -> list[DemoLogin]:
    """Add ``people`` Faker personnel plus the demo logins, open this year's cycle if needed, and
    walk each member through it with the real services. Returns the demo logins.

    ``sealer`` (``receipt_signature.receipt_sealer``) signs the receipts as the web does."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    local_now = now.astimezone(ZoneInfo(tz))
    year = local_now.year
    demo_hash = hash_password(DEMO_PASSWORD, hash_method)

    logins = []
    for badge, first, last, role, unit, shift, rank, about in DEMO_PEOPLE:
        member = session.scalar(select(Member).where(Member.badge == badge))
        if member is None:
            member = Member(badge=badge, first_name=first, last_name=last, unit=unit, shift=shift,
                            rank=rank, email=f"{first}.{last}@example.org".lower(), status="active",
                            hire_date=date(2015, 3, 2), password_hash=demo_hash)
            roles = {"officer", role}
            member.roles = [MemberRole(role=r) for r in sorted(roles)]
            session.add(member)
        logins.append(DemoLogin(badge, f"{first} {last}", role, about))
    session.flush()

    numeric = [int(b) for b in session.scalars(select(Member.badge)) if b.isdigit()]
    start_badge = max([1999, *numeric]) + 1
    supervisors: dict[str, list[Member]] = {}
    new_members = []
    for offset in range(people):
        unit = _weighted(rng, UNITS)
        civilian = unit in CIVILIAN_UNITS
        rank = _weighted(rng, CIVILIAN_RANKS if civilian else SWORN_RANKS)
        first, last = fake.first_name(), fake.last_name()
        status = _weighted(rng, [("active", 0.93), ("leave", 0.05), ("separated", 0.02)])
        member = Member(
            badge=str(start_badge + offset), first_name=first, last_name=last,
            email=f"{first}.{last}{offset}@example.org".lower(), rank=rank, unit=unit,
            shift="Day" if civilian and rng.random() < 0.6 else rng.choice(SHIFTS),
            hire_date=fake.date_between(start_date=date(1995, 1, 1), end_date=date(year - 1, 12, 31)),
            status=status, roles=[MemberRole(role="officer")])
        session.add(member)
        new_members.append(member)
        if rank in ("Sergeant", "Lieutenant", "Commander"):
            supervisors.setdefault(unit, []).append(member)
    session.flush()
    for member in new_members:
        candidates = [s for s in supervisors.get(member.unit, []) if s.id != member.id]
        if candidates:
            member.supervisor_id = rng.choice(candidates).id
    _form_squad(session, new_members, supervisors)

    # The year's annual cycle (a year can have others: new hires, remedial).
    cycle = session.scalar(select(Cycle).where(Cycle.name == default_name(year)))
    if cycle is None:
        cycle_start = datetime.combine(date(year, 1, 2), time(9), ZoneInfo(tz)).astimezone(timezone.utc)
        cycle = create_cycle(session, year=year, due_date=date(year, 12, 31),
                             today=local_now.date(), now=min(cycle_start, now),
                             policy_ids=list(session.scalars(select(Policy.id))))
    else:
        _add_to_cycle(session, cycle, new_members, now)

    demo_badges = {p[0]: p for p in DEMO_PEOPLE}
    assignments = session.scalars(select(Assignment).join(Member)
                                  .where(Assignment.cycle_id == cycle.id).order_by(Member.badge))
    facts_base = dict(timezone=tz, department=department, user_agent="Roll Call demo seed", sealer=sealer)
    for assignment in assignments:
        member = assignment.member
        if member.badge in demo_badges:
            target = {"1002": "half_way"}.get(member.badge, "not_started")
        elif any(m is member for m in new_members):
            target = _weighted(rng, PROGRESS_SPREAD)
        else:
            continue  # people from an earlier seed keep where they were
        _walk(session, assignment, member, target, rng, now, facts_base)
    session.flush()
    return logins


def _form_squad(session: Session, new_members: list[Member], supervisors: dict[str, list[Member]]) -> None:
    """The demo sergeant's squad: Dana Whitfield (1001) and up to SQUAD_SIZE of the new officers of
    his unit, day shift first; he reports to one of the unit's lieutenants or commanders, if any,
    so his lieutenant sees the squad through him."""
    sergeant = session.scalar(select(Member).where(Member.badge == DEMO_SERGEANT))
    if sergeant is None:
        return
    officers = [m for m in new_members if m.unit == sergeant.unit and m.rank == "Officer"]
    officers.sort(key=lambda m: (m.shift != sergeant.shift, m.badge))
    for member in officers[:SQUAD_SIZE]:
        member.supervisor_id = sergeant.id
    dana = session.scalar(select(Member).where(Member.badge == "1001"))
    if dana is not None:
        dana.supervisor_id = sergeant.id
    bosses = [m for m in supervisors.get(sergeant.unit, []) if m.rank in ("Lieutenant", "Commander")]
    if bosses and sergeant.supervisor_id is None:
        sergeant.supervisor_id = bosses[0].id


def _add_to_cycle(session: Session, cycle: Cycle, members: list[Member], now: datetime) -> None:
    for member in members:
        if member.status != "active":
            continue
        for version in cycle.policy_versions:
            session.add(Assignment(cycle_id=cycle.id, member_id=member.id, policy_version_id=version.id,
                                   due_date=cycle.due_date, assigned_at=now))
    session.flush()


def _walk(session: Session, assignment: Assignment, member: Member, target: str, rng: random.Random,
          now: datetime, facts_base: dict) -> None:
    """Move one assignment to ``target`` through the same services the web uses."""
    if target == "not_started":
        return
    lessons = assignment.policy_version.lessons
    span = max(1, int((now - assignment.assigned_at).total_seconds()))
    moment = assignment.assigned_at + timedelta(seconds=rng.randrange(span // 2))

    def tick() -> datetime:
        nonlocal moment
        moment = min(now, moment + timedelta(minutes=rng.randrange(3, 40)))
        return moment

    to_read = lessons if target != "half_way" else lessons[: max(1, len(lessons) // 2)]
    if target == "in_progress":
        to_read = lessons[: rng.randrange(1, len(lessons) + 1)]
    for lesson in to_read:
        mark_lesson_read(session, assignment, lesson, tick())
    if target in ("in_progress", "half_way") and len(to_read) < len(lessons):
        return
    if target == "in_progress":
        return
    outcomes = {"quiz_failed": [False], "quiz_passed": [True], "complete": [True]}[target]
    if target != "quiz_failed" and rng.random() < 0.25:
        outcomes = [False, True]  # a retake after a failed first attempt
    for should_pass in outcomes:
        attempt = quiz_service.start_attempt(session, assignment, tick(), rng=rng)
        wrong_allowed = rng.randrange(0, 3) if should_pass else rng.randrange(3, 7)
        answers = {}
        for item in attempt.items:
            right = [o.id for o in item.question.options if o.correct]
            wrong = [o.id for o in item.question.options if not o.correct]
            if wrong_allowed and wrong:
                answers[item.position] = [rng.choice(wrong)]
                wrong_allowed -= 1
            else:
                answers[item.position] = right
        quiz_service.submit_attempt(session, attempt, answers, tick())
    if target == "complete":
        facts = SigningFacts(ip=f"10.20.{rng.randrange(1, 250)}.{rng.randrange(1, 250)}", now=tick(), **facts_base)
        append_acknowledgment(session, assignment=assignment, member=member,
                              printed_name=member.full_name, facts=facts)
