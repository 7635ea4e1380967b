"""Personnel import from the HR system's CSV: validate the whole file, preview, then apply it in
one transaction or not at all."""
from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lms.models import MEMBER_STATUSES, ROLES, Member, MemberRole, PersonnelUpload
from lms.services.audit import record_event
from lms.services.cycles import return_from_leave, sync_audience
from lms.services.personnel_history import (
    MemberState,
    record_changes,
    record_initial,
    states_on,
    sync_rows,
    tracked_members,
)
from lms.services.validators import date_problem, email_problem, parse_iso_date, text_problem

COLUMNS = ["badge", "first_name", "last_name", "email", "rank", "unit", "shift",
           "supervisor_badge", "hire_date", "status", "role"]
REQUIRED = ("badge", "first_name", "last_name", "status", "role")
LENGTHS = {"badge": 20, "first_name": 80, "last_name": 80, "email": 254, "rank": 40, "unit": 80,
           "shift": 40, "supervisor_badge": 20}
#: The fields an import may change on an existing member.
UPDATABLE = ("first_name", "last_name", "email", "rank", "unit", "shift", "hire_date", "status")
#: Of those, the ones kept as effective-dated history (with the supervisor): compared with the
#: member's values on the effective date and appended as changes, never overwritten.
DATED = ("status", "unit", "shift", "rank")


class PersonnelImportError(ValueError):
    """The file was refused; ``problems`` lists every bad row with its line and field."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class PersonRow:
    line: int
    badge: str
    first_name: str
    last_name: str
    email: str | None
    rank: str | None
    unit: str | None
    shift: str | None
    supervisor_badge: str | None
    hire_date: date | None
    status: str
    roles: list[str]


@dataclass
class ImportPlan:
    """What applying the file would do."""

    sha256: str
    rows: list[PersonRow]
    #: The date the file's changes take effect (the import date unless one was given).
    effective: date
    adds: list[PersonRow] = field(default_factory=list)
    #: (row, {field: (old, new)})
    changes: list[tuple[PersonRow, dict]] = field(default_factory=list)
    unchanged: int = 0
    #: Members not in the file (only meaningful for a full-roster import).
    missing: list[Member] = field(default_factory=list)

    @property
    def separations(self) -> list[PersonRow]:
        """Rows that mark someone separated who was not before."""
        return [row for row, diff in self.changes if "status" in diff and row.status == "separated"]

    @property
    def has_changes(self) -> bool:
        return bool(self.adds or self.changes)


def parse_personnel_csv(data: bytes, *, ranks: list[str], max_bytes: int) -> tuple[list[PersonRow], str]:
    """Parse and validate every row; raise PersonnelImportError listing all problems. Returns rows and
    the file's SHA-256."""
    rows, problems, _, digest = _read_rows(data, ranks=ranks, max_bytes=max_bytes)
    if problems:
        raise PersonnelImportError(problems)
    return rows, digest


def _read_rows(data: bytes, *, ranks: list[str],
               max_bytes: int) -> tuple[list[PersonRow], list[str], set[str], str]:
    """The valid rows, the problems of the others, every badge the file names and its SHA-256.

    Problems with the file as a whole (size, encoding, header) raise PersonnelImportError at once;
    row problems are returned so the caller can add what only the database can tell.
    """
    text, digest = _decode(data, max_bytes=max_bytes)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader)]
    _check_header(header)

    problems: list[str] = []
    rows: list[PersonRow] = []
    seen: dict[str, int] = {}
    rank_set = set(ranks)
    last_line = reader.line_num
    for record in reader:
        # A quoted cell may hold line breaks: name the line the row starts on.
        line, last_line = last_line + 1, reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            problems.append(f"line {line}: expected {len(header)} fields, found {len(record)}")
            continue
        values = {name: cell.strip() for name, cell in zip(header, record)}
        hire, hire_problems = _hire_date(values["hire_date"])
        roles = [r.strip() for r in values["role"].replace(",", ";").split(";") if r.strip()]
        lengths = _length_problems(values)
        row_problems = [f"line {line}, {name}: {problem}" for name, problem in (
            *_required_problems(values), *lengths, *hire_problems,
            *_status_problems(values["status"]), *_role_problems(roles),
            *_rank_problems(values["rank"], rank_set), *_email_problems(values["email"], lengths),
            *_badge_problems(values, line, seen))]
        if row_problems:
            problems.extend(row_problems)
            continue
        rows.append(PersonRow(
            line=line, badge=values["badge"], first_name=values["first_name"], last_name=values["last_name"],
            email=values["email"] or None, rank=values["rank"] or None, unit=values["unit"] or None,
            shift=values["shift"] or None, supervisor_badge=values["supervisor_badge"] or None,
            hire_date=hire, status=values["status"], roles=roles))
    if not rows and not problems:
        problems.append("the file has a header but no rows")
    return rows, problems, set(seen), digest


#: A row's problems as (field, what is wrong), each check naming its own field.
FieldProblems = list[tuple[str, str]]


def _decode(data: bytes, *, max_bytes: int) -> tuple[str, str]:
    """The file's text and SHA-256; a file too large, not UTF-8 or empty is refused whole."""
    if len(data) > max_bytes:
        raise PersonnelImportError([f"file is {len(data):,} bytes; the limit is {max_bytes:,}"])
    digest = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PersonnelImportError([f"line {line}: the file is not UTF-8 (byte {exc.start}); "
                            f"save it as CSV UTF-8"]) from None
    if not text.strip():
        raise PersonnelImportError(["the file is empty: expected a header line and one row per member"])
    return text, digest


def _check_header(header: list[str]) -> None:
    """The header names every column once and no other."""
    missing = [c for c in COLUMNS if c not in header]
    unknown = [h for h in header if h not in COLUMNS]
    twice = len(set(header)) != len(header)
    if missing or unknown or twice:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown {', '.join(unknown)}")
        if twice:
            parts.append("a column appears twice")
        raise PersonnelImportError([f"line 1: header must be {','.join(COLUMNS)} ({'; '.join(parts)})"])


def _required_problems(values: dict[str, str]) -> FieldProblems:
    """Badge, names, status and role are filled in."""
    return [(name, "required") for name in REQUIRED if not values[name]]


def _length_problems(values: dict[str, str]) -> FieldProblems:
    """Text fields within their lengths and free of control characters."""
    found = ((name, text_problem(values[name], max_length=limit)) for name, limit in LENGTHS.items())
    return [(name, problem) for name, problem in found if problem]


def _hire_date(text: str) -> tuple[date | None, FieldProblems]:
    """The hire date (optional) as a date in the sane range."""
    if not text:
        return None, []
    hire = parse_iso_date(text)
    problem = f"{text!r} is not a date that exists in YYYY-MM-DD form" if hire is None else date_problem(hire)
    return (None, [("hire_date", problem)]) if problem else (hire, [])


def _status_problems(status: str) -> FieldProblems:
    """A status, when given, is one the department uses."""
    if status and status not in MEMBER_STATUSES:
        return [("status", f"{status!r} is not one of {', '.join(MEMBER_STATUSES)}")]
    return []


def _role_problems(roles: list[str]) -> FieldProblems:
    """Every role named is one of the app's roles."""
    return [("role", f"{role!r} is not one of {', '.join(ROLES)}") for role in roles if role not in ROLES]


def _rank_problems(rank: str, known: set[str]) -> FieldProblems:
    """A rank, when the department lists its ranks, is one of them."""
    if rank and known and rank not in known:
        return [("rank", f"{rank!r} is not a known rank ({', '.join(sorted(known))})")]
    return []


def _email_problems(email: str, lengths: FieldProblems) -> FieldProblems:
    """An e-mail address, when given, is one well-formed address (said once: not again when its
    length or characters were already refused)."""
    problem = email_problem(email) if email else None
    if not problem or any(name == "email" for name, _ in lengths):
        return []
    return [("email", problem)]


def _badge_problems(values: dict[str, str], line: int, seen: dict[str, int]) -> FieldProblems:
    """A badge appears on one line of the file, and nobody supervises themselves. Records the
    badge's line in ``seen``."""
    badge = values["badge"]
    problems: FieldProblems = []
    if badge:
        if badge in seen:
            problems.append(("badge", f"{badge} is also on line {seen[badge]}"))
        else:
            seen[badge] = line
    if values["supervisor_badge"] and values["supervisor_badge"] == badge:
        problems.append(("supervisor_badge", "a member cannot supervise themselves"))
    return problems


def _line_of(problem: str) -> int:
    """The line number a row problem names ("line 4, …"), for listing problems in file order."""
    match = re.match(r"line (\d+)", problem)
    return int(match.group(1)) if match else 0


def plan_import(session: Session, data: bytes, *, ranks: list[str], max_bytes: int, effective: date,
                full_roster: bool = False) -> ImportPlan:
    """Validate the file against itself and the database; nothing is written. Every problem is
    reported at once, those of the rows' own fields and those against the record alike, so a
    corrected file is not refused again for a row that was wrong all along.

    Status, unit, shift, rank and supervisor are compared with each member's values on
    ``effective`` (their history), so a file already applied for that date changes nothing; names,
    e-mail and hire date with the member row."""
    rows, problems, in_file, digest = _read_rows(data, ranks=ranks, max_bytes=max_bytes)
    existing = {m.badge: m for m in session.scalars(select(Member))}
    badges: dict[int | None, str] = {m.id: m.badge for m in existing.values()}
    states = states_on(session, effective)
    plan = ImportPlan(sha256=digest, rows=rows, effective=effective)
    for row in rows:
        if row.supervisor_badge and row.supervisor_badge not in in_file and row.supervisor_badge not in existing:
            problems.append(f"line {row.line}, supervisor_badge: no member has badge "
                            f"{row.supervisor_badge} (in this file or on record)")
        member = existing.get(row.badge)
        if member is None:
            plan.adds.append(row)
            continue
        if (member.first_name.casefold() != row.first_name.casefold()
                and member.last_name.casefold() != row.last_name.casefold()):
            problems.append(f"line {row.line}, badge: {row.badge} belongs to {member.full_name}; "
                            f"badge numbers are never reused for another person")
            continue
        diff = {}
        state = states[member.id]
        for name in UPDATABLE:
            old, new = getattr(state if name in DATED else member, name), getattr(row, name)
            if old != new:
                diff[name] = (old, new)
        supervisor = badges.get(state.supervisor_id)
        if supervisor != row.supervisor_badge:
            diff["supervisor_badge"] = (supervisor, row.supervisor_badge)
        added_roles = sorted(set(row.roles) - member.role_names)
        if added_roles:
            diff["roles"] = (sorted(member.role_names), sorted(member.role_names | set(row.roles)))
        if diff:
            plan.changes.append((row, diff))
        else:
            plan.unchanged += 1
    if problems:
        raise PersonnelImportError(sorted(problems, key=_line_of))
    if full_roster:
        plan.missing = sorted((m for b, m in existing.items()
                               if b not in in_file and states[m.id].status != "separated"),
                              key=lambda m: (m.last_name, m.first_name))
    return plan


def apply_import(session: Session, plan: ImportPlan, *, separate_missing: bool, actor_id: int | None,
                 ip: str | None, now: datetime, today: date, source: str) -> dict[str, int]:
    """Write the plan: insert new badges, update changed ones, and (only when asked) mark members
    missing from a full roster separated. Records of separated members are kept. Status, unit,
    shift, rank and supervisor changes are appended to the members' history with the plan's
    effective date; the member rows take them now if that date has come. Returns counts."""
    members = {m.badge: m for m in session.scalars(select(Member))}
    states = states_on(session, plan.effective)
    tracked = tracked_members(session)
    for row in plan.adds:
        member = Member(badge=row.badge, first_name=row.first_name, last_name=row.last_name,
                        email=row.email, rank=row.rank, unit=row.unit, shift=row.shift,
                        hire_date=row.hire_date, status=row.status,
                        roles=[MemberRole(role=r) for r in sorted(set(row.roles))])
        session.add(member)
        members[row.badge] = member
    session.flush()
    for row in plan.adds:
        supervisor = members.get(row.supervisor_badge) if row.supervisor_badge else None
        member = members[row.badge]
        member.supervisor_id = supervisor.id if supervisor else None
        record_initial(session, member, effective=plan.effective, now=now, today=today, actor_id=actor_id,
                       source=source)
    touched = []

    def change(member: Member, values: dict) -> None:
        record_changes(session, member, values, effective=plan.effective, today=today, now=now,
                       actor_id=actor_id, source=source, before=states.get(member.id, MemberState.of(member)),
                       tracked=member.id in tracked, sync=False)
        touched.append(member.id)

    for row, diff in plan.changes:
        member = members[row.badge]
        for name in UPDATABLE:
            if name in diff and name not in DATED:
                setattr(member, name, getattr(row, name))
        for role in sorted(set(row.roles) - member.role_names):
            member.roles.append(MemberRole(role=role))
        supervisor = members.get(row.supervisor_badge) if row.supervisor_badge else None
        change(member, {"status": row.status, "unit": row.unit, "shift": row.shift, "rank": row.rank,
                        "supervisor": supervisor.id if supervisor else None})
    separated = 0
    if separate_missing:
        for member in plan.missing:
            change(member, {"status": "separated"})
            separated += 1
    session.flush()
    for member, previous in sync_rows(session, touched, today=today):
        if previous == "leave" and member.status == "active":
            return_from_leave(session, member, today=today, now=now)
    sync_audience(session, today=today, now=now)
    counts = {"added": len(plan.adds), "changed": len(plan.changes), "unchanged": plan.unchanged,
              "separated": len(plan.separations) + separated}
    record_event(session, "personnel.import", at=now, actor_id=actor_id, ip=ip,
                 details={"sha256": plan.sha256, "source": source, "rows": len(plan.rows),
                          "effective": plan.effective.isoformat(), "separated_missing": separated, **counts})
    session.flush()
    return counts


def purge_expired_uploads(session: Session, *, now: datetime, keep_days: int) -> int:
    """Remove uploaded personnel files older than ``keep_days``: they hold every member's personal
    data, and once applied (or abandoned) only their hash matters, which the ``personnel.upload``
    audit event keeps. Returns how many were removed; audited when any were."""
    cutoff = now - timedelta(days=keep_days)
    expired = list(session.execute(select(PersonnelUpload.id, PersonnelUpload.sha256)
                                   .where(PersonnelUpload.uploaded_at < cutoff)).all())
    if not expired:
        return 0
    session.execute(delete(PersonnelUpload).where(PersonnelUpload.id.in_([row.id for row in expired])))
    record_event(session, "personnel.upload_purge", at=now,
                 details={"removed": len(expired), "keep_days": keep_days,
                          "sha256": [row.sha256 for row in expired]})
    session.flush()
    return len(expired)
