"""Build a realistic year-end dataset in bulk:
``python -m bench.seed --people 50000 --database-url URL [--seed 2026] [--reset]``.

Three annual cycles (the two previous years, almost all complete, and this year's, about 85%
complete), personnel spread over the demo's units, shifts, ranks and supervisors, members on
leave and separated, new hires joining mid-cycle, lesson progress, quiz attempts with their
drawn items, exemptions, a few voided and re-signed acknowledgments, and a receipt for every
acknowledgment, all on one valid record chain (``flask --app app lms verify`` passes).

The demo seed walks each member through the real services, which is right for 60 people and far
too slow for 50,000 (a receipt takes about 0.4 s to render). Here the rows are generated in
Python and written in bulk: ``executemany`` on SQLite with foreign keys deferred to the commit,
``COPY`` on PostgreSQL. One receipt is rendered once and stored for every acknowledgment with a
short comment after its ``%%EOF`` naming the record, so each copy has its own SHA-256; record
hashes are computed with ``lms.services.records`` in chain order, exactly as signing does.
The demo logins (badges 1001-1006, password ``rollcall-demo-2026``) are included.
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import queue
import random
import sys
import threading
import time as clock
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from faker import Faker
from sqlalchemy import Connection, Engine, create_engine, event, func, make_url, select, text
from sqlalchemy.orm import Session

from lms import migrate
from lms.config import Defaults
from lms.db import Base, UTCDateTime, make_engine
from lms.models import Lesson, Member, PolicyVersion, Question, QuestionOption
from lms.models.assignment_state import refresh_assignment_state
from lms.services.accounts import hash_password
from lms.services.content import load_packs, sync_content
from lms.services.cycles import version_in_force
from lms.services.records import GENESIS_HASH, canonical_acknowledgment, canonical_void, record_hash
from seeds.demo import (
    CIVILIAN_RANKS,
    CIVILIAN_UNITS,
    DEMO_PASSWORD,
    DEMO_PEOPLE,
    SHIFTS,
    SWORN_RANKS,
    UNITS,
)

#: This year's cycle: where members stand at the end of the year, before the due date.
CURRENT_SPREAD = [("complete", 0.85), ("in_progress", 0.045), ("not_started", 0.04),
                  ("quiz_failed", 0.015), ("quiz_passed", 0.04), ("exempt", 0.01)]
#: Earlier cycles, long closed: almost all signed, a few late, a few never.
PAST_SPREAD = [("complete", 0.955), ("complete_late", 0.02), ("overdue", 0.015), ("exempt", 0.01)]
#: Where an unfinished assignment of a closed cycle stopped.
UNFINISHED = [("not_started", 0.5), ("in_progress", 0.3), ("quiz_failed", 0.1), ("quiz_passed", 0.1)]
MEMBER_STATUS = [("active", 0.90), ("leave", 0.04), ("separated", 0.06)]
#: Share of signed acknowledgments that were voided (signed under the wrong badge…) and re-signed.
VOID_SHARE = 0.0005
LIFTED_SHARE = 0.05
EXEMPTION_REASONS = ["Military leave", "Extended medical leave", "FMLA leave", "Light duty (HR approved)",
                     "Assigned to federal task force; trained by the agency"]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36 "
    "Edg/130.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 "
    "Mobile Safari/537.36",
]
LEVEL = {"Officer": 0, "Detective": 0, "Records Clerk": 0, "Telecommunicator": 0, "Analyst": 1,
         "Sergeant": 1, "Lieutenant": 2, "Commander": 3}
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
#: Rows per executemany / COPY round.
BATCH = 20_000
#: Tables copied in PostgreSQL's binary format: receipts would double in size as hex text.
BINARY_COPY = {"receipt": ["int4", "bytea", "varchar"]}


# --- the bulk writer ----------------------------------------------------------------------------

class BulkWriter:
    """Writes tuples of Python values into a table: COPY on PostgreSQL, executemany on SQLite.

    Datetimes are naive UTC (what UTCDateTime stores) and JSON columns arrive already encoded,
    so nothing per value goes through SQLAlchemy's type processing, which would cost more than
    the insert itself at this volume. On PostgreSQL, COPY runs on ``workers`` connections of
    their own in background threads, so the server stores one batch while Python generates the
    next; their transactions commit after the main one (``finish``), with foreign-key triggers
    off as pg_restore --disable-triggers does, so the order rows arrive in does not matter.
    """

    def __init__(self, connection: Connection, engine: Engine | None = None, workers: int = 2):
        self.connection = connection
        self.postgres = connection.dialect.name == "postgresql"
        self.rows_written: dict[str, int] = defaultdict(int)
        self._jobs: queue.Queue = queue.Queue(maxsize=2 * workers)
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._outcome = threading.Event()
        self._commit = False
        self._drained: list[threading.Event] = []
        if self.postgres and engine is not None:
            for n in range(workers):
                drained = threading.Event()
                thread = threading.Thread(target=self._copy_worker, args=(engine, drained), name=f"copy-{n}",
                                          daemon=True)
                thread.start()
                self._threads.append(thread)
                self._drained.append(drained)

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
        """Insert ``rows`` (tuples in ``columns`` order) in batches."""
        batch: list[tuple] = []
        convert = None if self.postgres else self._sqlite_converter(table, columns)
        for row in rows:
            batch.append(convert(row) if convert else row)
            if len(batch) >= BATCH:
                self._write(table, columns, batch)
                batch = []
        if batch:
            self._write(table, columns, batch)

    def _write(self, table: str, columns: Sequence[str], batch: list[tuple]) -> None:
        self.rows_written[table] += len(batch)
        if self._errors:
            raise RuntimeError("a COPY worker failed") from self._errors[0]
        if self._threads:
            self._jobs.put((table, columns, batch))
        elif self.postgres:
            _copy(self.connection.connection.driver_connection, table, columns, batch)
        else:
            names = ", ".join(columns)
            marks = ", ".join("?" * len(columns))
            self.connection.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", batch)

    def _copy_worker(self, engine: Engine, drained: threading.Event) -> None:
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
                raw = conn.connection.driver_connection
                while (job := self._jobs.get()) is not None:
                    if not self._errors:
                        _copy(raw, *job)
                drained.set()
                self._outcome.wait()
                if self._commit and not self._errors:
                    conn.commit()
        except BaseException as exc:  # reported to the main thread by _write, drain or finish
            self._errors.append(exc)
            if not drained.is_set():
                while self._jobs.get() is not None:  # keep draining so the producer never blocks
                    pass
                drained.set()

    def drain(self) -> None:
        """Wait until every batch is stored (not yet committed); raise if a worker failed."""
        for _ in self._threads:
            self._jobs.put(None)
        for drained in self._drained:
            drained.wait()
        if self._errors:
            raise RuntimeError("a COPY worker failed") from self._errors[0]

    def finish(self, commit: bool) -> None:
        """Commit (or roll back) the workers' transactions, after the main one has committed."""
        self._commit = commit
        self._outcome.set()
        for thread in self._threads:
            thread.join()
        if commit and self._errors:
            raise RuntimeError("a COPY worker failed") from self._errors[0]

    @staticmethod
    def _sqlite_converter(table: str, columns: Sequence[str]):
        """Format datetimes and dates as SQLAlchemy's SQLite dialect stores them."""
        model_table = Base.metadata.tables[table]
        kinds = []
        for name in columns:
            type_ = model_table.c[name].type
            kinds.append("dt" if isinstance(type_, UTCDateTime) else
                         "d" if type_.python_type is date else None)
        if not any(kinds):
            return None
        positions = [(i, k) for i, k in enumerate(kinds) if k]

        def convert(row: tuple) -> tuple:
            values = list(row)
            for i, kind in positions:
                value = values[i]
                if value is not None:
                    values[i] = value.isoformat(" ", "microseconds") if kind == "dt" else value.isoformat()
            return tuple(values)

        return convert


def _copy(raw, table: str, columns: Sequence[str], batch: list[tuple]) -> None:
    """COPY a batch into a table on a psycopg connection; binary for the tables that need it."""
    binary = table in BINARY_COPY
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")
    with raw.cursor() as cursor, cursor.copy(sql) as copy:
        if binary:
            copy.set_types(BINARY_COPY[table])
        for row in batch:
            copy.write_row(row)


# --- content as the seed needs it ---------------------------------------------------------------

@dataclass
class QuizQuestion:
    id: int
    topic: str
    #: JSON of every order the options can be shown in.
    orders: list[str]
    right: str
    wrongs: list[str]
    #: Relative chance of being answered wrongly; gives item analysis something to find.
    difficulty: float


@dataclass
class VersionInfo:
    id: int
    policy_id: str
    title: str
    effective: date
    text_sha256: str
    attestation: str
    pass_mark: int
    draw_size: int
    max_attempts: int
    minimum_per_topic: dict[str, int]
    lesson_ids: list[int]
    questions: list[QuizQuestion]
    by_topic: dict[str, list[QuizQuestion]] = field(default_factory=dict)

    def __post_init__(self):
        for question in self.questions:
            self.by_topic.setdefault(question.topic, []).append(question)
        draw = self.draw_size
        #: The most wrong answers that still pass.
        self.max_wrong_to_pass = max(w for w in range(draw + 1) if 100 * (draw - w) // draw >= self.pass_mark)


def _version_info(session: Session, version: PolicyVersion, rng: random.Random) -> VersionInfo:
    lessons = list(session.scalars(select(Lesson.id).where(Lesson.version_id == version.id,
                                                          Lesson.retired.is_(False)).order_by(Lesson.position)))
    questions = []
    bank = select(Question).where(Question.version_id == version.id, Question.retired.is_(False))
    for question in session.scalars(bank.order_by(Question.position)):
        options: list[QuestionOption] = question.options
        ids = [o.id for o in options]
        right = sorted(o.id for o in options if o.correct)
        questions.append(QuizQuestion(
            id=question.id, topic=question.topic,
            orders=[json.dumps(list(p)) for p in itertools.permutations(ids)],
            right=json.dumps(right), wrongs=[json.dumps([o.id]) for o in options if not o.correct],
            difficulty=rng.choice([0.5, 1, 1, 1, 1.5, 2, 3])))
    return VersionInfo(id=version.id, policy_id=version.policy_id, title=version.policy.title,
                       effective=version.effective, text_sha256=version.text_sha256,
                       attestation=version.attestation, pass_mark=version.pass_mark,
                       draw_size=version.draw_size, max_attempts=version.max_attempts,
                       minimum_per_topic=dict(version.minimum_per_topic), lesson_ids=lessons,
                       questions=questions)


# --- people ------------------------------------------------------------------------------------

@dataclass
class Person:
    id: int
    badge: str
    first: str
    last: str
    unit: str
    shift: str
    rank: str
    hire: date
    status: str
    #: When the member went on leave or separated (UTC, naive); None for active members.
    left_at: datetime | None = None
    supervisor_id: int | None = None

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


def _weighted(rng: random.Random, pairs) -> str:
    names, weights = zip(*pairs)
    return rng.choices(names, weights=weights)[0]


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def make_people(count: int, rng: random.Random, fake: Faker, now: datetime, today: date) -> list[Person]:
    """The demo logins, then ``count`` minus their number of Faker personnel (names drawn from seeded pools)."""
    firsts = list({fake.first_name() for _ in range(1500)})
    lasts = list({fake.last_name() for _ in range(2500)})
    firsts.sort(), lasts.sort()
    people = [Person(id=n, badge=badge, first=first, last=last, unit=unit, shift=shift, rank=rank,
                     hire=date(2015, 3, 2), status="active")
              for n, (badge, first, last, _role, unit, shift, rank, _about) in enumerate(DEMO_PEOPLE, start=1)]
    units, shares = zip(*UNITS.items())
    hire_span = (today - timedelta(days=7) - date(1990, 1, 1)).days
    for n in range(len(people) + 1, count + 1):
        unit = rng.choices(units, weights=shares)[0]
        civilian = unit in CIVILIAN_UNITS
        person = Person(
            id=n, badge=str(10_000 + n), first=rng.choice(firsts), last=rng.choice(lasts), unit=unit,
            shift="Day" if civilian and rng.random() < 0.6 else rng.choice(SHIFTS),
            rank=_weighted(rng, CIVILIAN_RANKS if civilian else SWORN_RANKS),
            hire=date(1990, 1, 1) + timedelta(days=rng.randrange(hire_span)),
            status=_weighted(rng, MEMBER_STATUS))
        hired_at = datetime.combine(person.hire, time(12))
        if person.status == "separated":  # some time in the last three years, after the hire
            earliest = max(hired_at + timedelta(days=30), _naive_utc(now) - timedelta(days=3 * 365))
            person.left_at = earliest + timedelta(seconds=rng.randrange(
                max(1, int((_naive_utc(now) - earliest).total_seconds()))))
        elif person.status == "leave":  # this year
            person.left_at = _naive_utc(now) - timedelta(days=rng.randrange(1, 300))
        if person.left_at is not None and person.left_at <= hired_at:
            person.status, person.left_at = "active", None
        people.append(person)
    _assign_supervisors(people, rng)
    return people


def _assign_supervisors(people: list[Person], rng: random.Random) -> None:
    """Each member reports to someone of the next level up in their unit, when there is one."""
    by_unit: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for person in people:
        if LEVEL[person.rank] > 0 and person.status == "active":
            by_unit[person.unit][LEVEL[person.rank]].append(person.id)
    for person in people:
        levels = by_unit[person.unit]
        for level in range(LEVEL[person.rank] + 1, 4):
            if levels.get(level):
                person.supervisor_id = rng.choice(levels[level])
                break


# --- the seed ----------------------------------------------------------------------------------

@dataclass
class PendingAck:
    """A signature to append once every cycle is generated, so the chain runs in time order."""

    at: datetime
    person: Person
    assignment_id: int
    cycle_id: int
    cycle_name: str
    version: VersionInfo
    attempt_id: int
    attempt_number: int
    score: int
    generation: int = 0
    #: When set, this signature is voided at that moment (and signed again later).
    voided_at: datetime | None = None


class Generator:
    """Generates every row; ids are assigned here so children can point at parents."""

    def __init__(self, writer: BulkWriter, rng: random.Random, *, now: datetime, tz: str):
        self.writer = writer
        self.rng = rng
        self.now = _naive_utc(now)
        self.tz = tz
        self.zone = ZoneInfo(tz)
        self.ids: dict[str, int] = defaultdict(int)
        self.buffers: dict[str, list[tuple]] = defaultdict(list)
        self.acks: list[PendingAck] = []
        self.status_counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def next_id(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    COLUMNS = {
        "assignment": ("id", "cycle_id", "member_id", "policy_version_id", "due_date", "assigned_at",
                       "superseded_at"),
        "lesson_progress": ("id", "assignment_id", "lesson_id", "completed_at"),
        "quiz_attempt": ("id", "assignment_id", "number", "started_at", "submitted_at", "correct_count",
                         "score", "passed"),
        "attempt_item": ("id", "attempt_id", "position", "question_id", "option_order", "chosen", "correct"),
        "exemption": ("id", "cycle_id", "member_id", "reason", "granted_by_id", "granted_at", "lifted_at",
                      "lifted_by_id"),
    }
    #: Parents first, so SQLite's deferred checks and PostgreSQL's immediate ones both hold.
    ORDER = ("assignment", "exemption", "lesson_progress", "quiz_attempt", "attempt_item")

    def add(self, table: str, row: tuple) -> None:
        self.buffers[table].append(row)
        if len(self.buffers["attempt_item"]) >= 5 * BATCH:
            self.flush()

    def flush(self) -> None:
        for table in self.ORDER:
            rows = self.buffers.pop(table, [])
            if rows:
                self.writer.insert(table, self.COLUMNS[table], rows)

    def local_midnight_after(self, day: date) -> datetime:
        """The first instant after ``day`` ends in department time, naive UTC."""
        return _naive_utc(datetime.combine(day + timedelta(days=1), time(0), self.zone))

    # -- one cycle --

    def cycle(self, *, cycle_id: int, year: int, versions: list[VersionInfo], people: list[Person],
              current: bool, coordinator_id: int) -> None:
        rng = self.rng
        cycle_name = f"{year} annual"
        created = _naive_utc(datetime.combine(date(year, 1, 2), time(9), self.zone))
        created = min(created, self.now - timedelta(days=1))
        due = date(year, 12, 31)
        due_end = self.local_midnight_after(due)
        spread = CURRENT_SPREAD if current else PAST_SPREAD
        for person in people:
            hired = datetime.combine(person.hire, time(14))
            if hired <= created:
                assigned_at, due_date = created, due
            elif hired < min(due_end, self.now):  # a new hire joins with the grace period
                assigned_at = hired + timedelta(days=1, hours=rng.randrange(8))
                due_date = max(due, (assigned_at + timedelta(days=30)).date())
            else:
                continue
            if person.left_at is not None and person.left_at <= assigned_at:
                continue  # gone (or on leave) before the cycle reached them
            if assigned_at >= self.now:
                continue
            target = _weighted(rng, spread)
            end = min(self.now, person.left_at or self.now)
            exempt = target == "exempt"
            if exempt:
                target = "not_started" if rng.random() < 0.8 else "in_progress"
                granted = assigned_at + (end - assigned_at) * rng.random() * 0.3
                lifted = granted + timedelta(days=rng.randrange(20, 90)) if rng.random() < LIFTED_SHARE else None
                if lifted is not None and lifted >= self.now:
                    lifted = None
                self.add("exemption", (self.next_id("exemption"), cycle_id, person.id,
                                       rng.choice(EXEMPTION_REASONS), coordinator_id, granted, lifted,
                                       coordinator_id if lifted else None))
            for version in versions:
                assignment_id = self.next_id("assignment")
                self.add("assignment",
                         (assignment_id, cycle_id, person.id, version.id, due_date, assigned_at, None))
                this = target
                if this == "overdue":
                    this = _weighted(rng, UNFINISHED)
                due_by = self.local_midnight_after(due_date)
                if this == "complete":
                    window = (assigned_at, min(end, due_by - timedelta(minutes=5)))
                elif this == "complete_late":
                    window = (due_by + timedelta(hours=2), min(end, due_by + timedelta(days=60)))
                else:
                    window = (assigned_at, min(end, due_by - timedelta(minutes=5)))
                if window[1] - window[0] < timedelta(hours=6):
                    this = "not_started"  # no time to do anything before leaving
                self.walk(assignment_id, person, version, this, window, cycle_id, cycle_name)
                if person.status == "active":
                    self.status_counts[cycle_id]["exempt" if exempt else target] += 1

    def walk(self, assignment_id: int, person: Person, version: VersionInfo, target: str,
             window: tuple[datetime, datetime], cycle_id: int, cycle_name: str) -> None:
        """Write the lesson progress, attempts and (pending) signature that lead to ``target``."""
        if target == "not_started":
            return
        rng = self.rng
        start, end = window
        span = (end - start).total_seconds()
        # Most members finish in the first months; a tail leaves it to the end.
        moment = start + timedelta(seconds=span * rng.random() ** 1.6 * 0.97)
        horizon = end

        def tick(low: int, high: int) -> datetime:
            nonlocal moment
            moment = min(horizon, moment + timedelta(seconds=rng.randrange(low, high)))
            return moment

        lessons = version.lesson_ids
        read = lessons if target != "in_progress" else lessons[: rng.randrange(1, len(lessons) + 1)]
        for lesson_id in read:
            self.add("lesson_progress", (self.next_id("lesson_progress"), assignment_id, lesson_id,
                                         tick(240, 1500)))
        if target == "in_progress":
            if len(read) == len(lessons) and rng.random() < 0.4:  # an attempt started, not submitted
                self.attempt(assignment_id, version, 1, tick(60, 600), None, passed=None)
            return
        plan = {"quiz_failed": [False] * rng.choice([1, 1, 2]),
                "quiz_passed": [True], "complete": [True], "complete_late": [True]}[target]
        if target != "quiz_failed" and rng.random() < 0.22:
            plan = [False, True] if rng.random() < 0.85 else [False, False, True]
        plan = plan[: version.max_attempts]
        last = None
        for number, should_pass in enumerate(plan, start=1):
            if number > 1:
                tick(600, 3 * 86400)  # a retake, after re-reading, minutes to days later
            last = self.attempt(assignment_id, version, number, tick(60, 900), tick(300, 1500),
                                passed=should_pass)
        if target in ("complete", "complete_late"):
            attempt_id, score = last
            signed = tick(60, 1200)
            ack = PendingAck(at=signed, person=person, assignment_id=assignment_id, cycle_id=cycle_id,
                             cycle_name=cycle_name, version=version, attempt_id=attempt_id,
                             attempt_number=len(plan), score=score)
            if rng.random() < VOID_SHARE and signed + timedelta(days=12) < self.now:
                ack.voided_at = signed + timedelta(days=rng.randrange(1, 6), hours=rng.randrange(1, 8))
                again = PendingAck(**{**ack.__dict__, "generation": 1, "voided_at": None,
                                      "at": ack.voided_at + timedelta(days=rng.randrange(1, 5), hours=2)})
                self.acks.append(again)
            self.acks.append(ack)

    def attempt(self, assignment_id: int, version: VersionInfo, number: int, started: datetime,
                submitted: datetime | None, passed: bool | None) -> tuple[int, int]:
        """One quiz attempt and its drawn items; ``passed`` None leaves it open."""
        rng = self.rng
        attempt_id = self.next_id("quiz_attempt")
        drawn: list[QuizQuestion] = []
        for topic, minimum in sorted(version.minimum_per_topic.items()):
            drawn.extend(rng.sample(version.by_topic[topic], minimum))
        taken = {q.id for q in drawn}
        rest = [q for q in version.questions if q.id not in taken]
        drawn.extend(rng.sample(rest, version.draw_size - len(drawn)))
        rng.shuffle(drawn)
        size = len(drawn)
        if passed is None:
            wrong: set[int] = set()
        else:
            limit = version.max_wrong_to_pass
            count = min(limit, rng.choice((0, 0, 1, 1, 1, 2))) if passed else \
                rng.randrange(limit + 1, min(size, limit + 6) + 1)
            # Harder questions are the ones more often missed.
            keys = sorted(range(size), key=lambda i: rng.random() ** (1.0 / drawn[i].difficulty), reverse=True)
            wrong = set(keys[:count])
        for position, question in enumerate(drawn, start=1):
            if passed is None:
                chosen, correct = None, None
            elif position - 1 in wrong and question.wrongs:
                chosen, correct = rng.choice(question.wrongs), False
            else:
                chosen, correct = question.right, True
            self.add("attempt_item", (self.next_id("attempt_item"), attempt_id, position, question.id,
                                      rng.choice(question.orders), chosen, correct))
        if passed is None:
            self.add("quiz_attempt", (attempt_id, assignment_id, number, started, None, None, None, None))
            return attempt_id, 0
        right = size - len(wrong)
        score = 100 * right // size
        self.add("quiz_attempt", (attempt_id, assignment_id, number, started, submitted,
                                  right, score, score >= version.pass_mark))
        return attempt_id, score

    # -- the record chain --

    def write_chain(self, receipt_pdf: bytes, *, hr_id: int, department_tz: str) -> tuple[int, str]:
        """Append every signature and void in time order, with receipts and audit events."""
        rng = self.rng
        events: list[tuple[datetime, int, str, PendingAck]] = []
        for n, ack in enumerate(self.acks):
            events.append((ack.at, n, "ack", ack))
            if ack.voided_at is not None:
                events.append((ack.voided_at, n, "void", ack))
        events.sort(key=lambda e: (e[0], e[1], e[2]))
        base = receipt_pdf if receipt_pdf.endswith(b"\n") else receipt_pdf + b"\n"
        prefix_state = hashlib.sha256(base)
        codes: set[str] = set()
        ack_ids: dict[int, int] = {}
        prev = GENESIS_HASH
        sequence = 0
        ack_rows, receipt_rows, void_rows, audit_rows = [], [], [], []
        ack_columns = ("id", "sequence", "member_id", "assignment_id", "generation", "cycle_id",
                       "policy_version_id", "quiz_attempt_id", "badge", "printed_name", "policy_ref",
                       "policy_title", "policy_effective", "text_sha256", "statement", "signed_at",
                       "signed_at_local", "timezone", "signed_from_ip", "user_agent", "quiz_attempt_number",
                       "quiz_score", "verification_code", "prev_hash", "record_hash")
        void_columns = ("id", "sequence", "acknowledgment_id", "reason", "voided_by_id", "voided_at",
                        "voided_from_ip", "prev_hash", "record_hash")
        audit_columns = ("id", "at", "actor_id", "action", "target", "ip", "outcome", "details")

        def flush() -> None:
            self.writer.insert("acknowledgment", ack_columns, ack_rows)
            self.writer.insert("receipt", ("acknowledgment_id", "pdf", "sha256"), receipt_rows)
            self.writer.insert("acknowledgment_void", void_columns, void_rows)
            self.writer.insert("audit_event", audit_columns, audit_rows)
            for rows in (ack_rows, receipt_rows, void_rows, audit_rows):
                rows.clear()

        for at, n, kind, pending in events:
            sequence += 1
            aware = at.replace(tzinfo=timezone.utc)
            if kind == "ack":
                ack_id = self.next_id("acknowledgment")
                ack_ids[n] = ack_id
                code = _code(rng)
                while code in codes:
                    code = _code(rng)
                codes.add(code)
                person, version = pending.person, pending.version
                ip = f"10.{rng.randrange(20, 40)}.{rng.randrange(1, 250)}.{rng.randrange(1, 250)}"
                record = SimpleNamespace(
                    sequence=sequence, member_id=person.id, badge=person.badge, printed_name=person.name,
                    assignment_id=pending.assignment_id, generation=pending.generation,
                    cycle_id=pending.cycle_id, policy_version_id=version.id, policy_ref=version.policy_id,
                    policy_title=version.title, policy_effective=version.effective,
                    text_sha256=version.text_sha256, statement=version.attestation, signed_at=aware,
                    signed_at_local=aware.astimezone(self.zone).isoformat(timespec="seconds"),
                    timezone=department_tz, signed_from_ip=ip, user_agent=rng.choice(USER_AGENTS),
                    quiz_attempt_id=pending.attempt_id, quiz_attempt_number=pending.attempt_number,
                    quiz_score=pending.score, verification_code=code,
                    auth_method=None)  # signed with a password: no single sign-on facts in the hash
                # Each stored copy names its record after %%EOF, so every receipt has its own hash.
                trailer = f"%Roll Call bench copy: acknowledgment {ack_id}, {code}\n".encode()
                state = prefix_state.copy()
                state.update(trailer)
                receipt_sha = state.hexdigest()
                record_hash_ = record_hash(prev, canonical_acknowledgment(record, receipt_sha))
                ack_rows.append((ack_id, sequence, person.id, pending.assignment_id, pending.generation,
                                 pending.cycle_id, version.id, pending.attempt_id, person.badge, person.name,
                                 version.policy_id, version.title, version.effective, version.text_sha256,
                                 version.attestation, at, record.signed_at_local, department_tz, ip,
                                 record.user_agent, pending.attempt_number, pending.score, code, prev,
                                 record_hash_))
                receipt_rows.append((ack_id, base + trailer, receipt_sha))
                audit_rows.append((self.next_id("audit_event"), at, person.id, "ack.sign",
                                   f"acknowledgment:{ack_id}", ip, "success",
                                   json.dumps({"policy": version.policy_id,
                                               "version": version.effective.isoformat(),
                                               "cycle": int(pending.cycle_name[:4]), "verification_code": code})))
            else:
                ack_id = ack_ids[n]
                void_id = self.next_id("acknowledgment_void")
                reason = f"Signed under the wrong badge; corrected by HR ticket {rng.randrange(1000, 9999)}."
                record = SimpleNamespace(sequence=sequence, acknowledgment_id=ack_id, reason=reason,
                                         voided_by_id=hr_id, voided_at=aware, voided_from_ip="10.1.0.15")
                record_hash_ = record_hash(prev, canonical_void(record))
                void_rows.append((void_id, sequence, ack_id, reason, hr_id, at, "10.1.0.15", prev, record_hash_))
                audit_rows.append((self.next_id("audit_event"), at, hr_id, "ack.void", f"acknowledgment:{ack_id}",
                                   "10.1.0.15", "success",
                                   json.dumps({"void_id": void_id, "sequence": sequence,
                                               "badge": pending.person.badge, "policy": pending.version.policy_id,
                                               "version": pending.version.effective.isoformat(),
                                               "reason": reason})))
            prev = record_hash_
            if len(receipt_rows) >= BATCH // 4:  # receipts are 18 kB each; keep memory flat
                flush()
        flush()
        return sequence, prev


def _code(rng: random.Random) -> str:
    raw = "".join(rng.choices(_CODE_ALPHABET, k=12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


# --- databases ---------------------------------------------------------------------------------

def search_path_schema(url: str) -> str | None:
    """The schema named by ``?options=-csearch_path=X`` in a PostgreSQL URL, if any."""
    options = make_url(url).query.get("options", "")
    for part in (options if isinstance(options, str) else " ".join(options)).split():
        if part.startswith("-csearch_path="):
            return part.split("=", 1)[1].split(",")[0]
    return None


def prepare_database(url: str, *, reset: bool) -> None:
    """Create the PostgreSQL schema the URL points at, or with ``reset`` empty it (or the SQLite
    file) first."""
    if url.startswith("sqlite"):
        path = make_url(url).database
        if reset and path:
            for suffix in ("", "-wal", "-shm"):
                Path(path + suffix).unlink(missing_ok=True)
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return
    schema = search_path_schema(url) or "public"
    plain = make_url(url).difference_update_query(["options"])
    engine = create_engine(plain)
    with engine.begin() as conn:
        if reset:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    engine.dispose()


def bulk_engine(url: str) -> Engine:
    """An engine for loading: on SQLite, foreign keys on (checked at commit), and neither WAL nor
    fsync during the load (a crash means seeding again); the file is left in WAL mode."""
    if not url.startswith("sqlite"):
        return make_engine(url)
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        # No WAL while loading: it would write every page twice (log, then checkpoint).
        cursor.execute("PRAGMA journal_mode=MEMORY")
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA cache_size=-200000")
        cursor.close()

    return engine


def existing_members(engine: Engine) -> int:
    """How many members the database holds (0 when it has no schema yet)."""
    with engine.connect() as conn:
        if not conn.dialect.has_table(conn, "member"):
            return 0
        return conn.scalar(select(func.count()).select_from(Member.__table__))


def sample_receipt(department: str) -> bytes:
    """One receipt rendered as signing renders it."""
    from bench.receipt import sample_acknowledgment
    from lms.services.signing import render_receipt

    return render_receipt(sample_acknowledgment(), cycle_name="annual", department=department)


@dataclass
class SeedReport:
    """What a seed wrote."""

    #: Rows written per table.
    rows: dict[str, int]
    #: The statuses this year's active members were walked to.
    intended: dict[str, int]


def seed(url: str, *, people: int, seed_value: int = 2026, now: datetime | None = None,
         tz: str = Defaults.TIMEZONE, department: str = Defaults.DEPARTMENT_NAME,
         content_dir: str = Defaults.CONTENT_DIR, reset: bool = False, log=print) -> SeedReport:
    """Fill an empty database at ``url`` with ``people`` members and three cycles."""
    if people < len(DEMO_PEOPLE):
        raise ValueError(f"--people must be at least {len(DEMO_PEOPLE)}")
    started = clock.perf_counter()

    def step(message: str) -> None:
        log(f"[{clock.perf_counter() - started:6.1f} s] {message}")

    now = now or datetime.now(timezone.utc)
    today = now.astimezone(ZoneInfo(tz)).date()
    years = [today.year - 2, today.year - 1, today.year]
    prepare_database(url, reset=reset)
    engine = bulk_engine(url)
    try:
        members = existing_members(engine)
        if members:
            raise SystemExit(f"the database already has {members} members; pass --reset to start it afresh")
        migrate.upgrade(engine)
        with Session(engine) as session:
            sync_content(session, load_packs(Path(content_dir)))
            session.commit()
        step("schema and content loaded")
        receipt_pdf = sample_receipt(department)
        step(f"sample receipt rendered ({len(receipt_pdf):,} bytes)")
        rng = random.Random(seed_value)
        with Session(engine) as session:
            versions = _versions_by_year(session, years, today, rng)
        fake = Faker("en_US")
        fake.seed_instance(seed_value)
        roster = make_people(people, rng, fake, now, today)
        step(f"{len(roster):,} people generated")

        generator = None
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
            else:
                # As pg_restore --disable-triggers does: no per-row foreign-key checks (each one
                # a query and a row lock) while loading rows generated consistent. SQLite checks
                # every key of the same rows at commit, so the generator itself is checked there.
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            writer = BulkWriter(conn, engine)
            try:
                staff = _write_members(writer, roster, now)
                step("members written")
                generator = Generator(writer, rng, now=now, tz=tz)
                for cycle_id, year in enumerate(years, start=1):
                    _write_cycle(writer, generator, cycle_id, year, versions[year], roster, staff,
                                 current=year == today.year, now=now, tz=tz)
                    step(f"cycle {year}: {generator.ids['assignment']:,} assignments, "
                         f"{generator.ids['attempt_item']:,} attempt items so far")
                sequence, last_hash = generator.write_chain(receipt_pdf, hr_id=staff["hr"], department_tz=tz)
                conn.execute(text("UPDATE chain_head SET sequence = :s, last_hash = :h WHERE id = 1"),
                             {"s": sequence, "h": last_hash})
                step(f"record chain written: {sequence:,} records")
                if conn.dialect.name == "postgresql":
                    # Ids were given explicitly; the sequences must carry on after them.
                    for table, last in {**generator.ids, "member": len(roster)}.items():
                        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                          f"greatest(:n, 1), :n > 0)"), {"n": last})
                writer.drain()
                step("every row stored")
            except BaseException:
                writer.finish(commit=False)
                raise
        writer.finish(commit=True)
        step("committed")
        with engine.begin() as conn:
            # The rows went in without the ORM, whose flush keeps each assignment's stored progress;
            # the same rule, over every assignment at once.
            refresh_assignment_state(conn)
        step("stored progress computed")
        _settle(engine)
        step("vacuumed and analysed" if engine.dialect.name == "postgresql" else "switched to WAL")
        return SeedReport(dict(writer.rows_written), dict(generator.status_counts[len(years)]))
    finally:
        engine.dispose()


def _versions_by_year(session: Session, years: list[int], today: date,
                      rng: random.Random) -> dict[int, list[VersionInfo]]:
    """The versions each cycle assigns: those in force when it opened (2 January)."""
    infos: dict[int, VersionInfo] = {}
    policy_ids = list(session.scalars(select(PolicyVersion.policy_id).distinct()
                                      .order_by(PolicyVersion.policy_id)))
    by_year = {}
    for year in years:
        in_force = [version_in_force(session, p, min(date(year, 1, 2), today)) for p in policy_ids]
        by_year[year] = [infos.setdefault(v.id, _version_info(session, v, rng)) for v in in_force if v is not None]
    return by_year


def _write_members(writer: BulkWriter, roster: list[Person], now: datetime) -> dict[str, int]:
    """Members and their roles; returns the ids of the demo admin, coordinator and HR member."""
    demo = {p[0]: p for p in DEMO_PEOPLE}
    demo_hash = hash_password(DEMO_PASSWORD, Defaults.PASSWORD_HASH_METHOD)
    created_at = _naive_utc(now)
    columns = ("id", "badge", "first_name", "last_name", "email", "rank", "unit", "shift", "supervisor_id",
               "hire_date", "status", "password_hash", "created_at")
    # Supervisors first: a row pointing at one not yet written would leave SQLite a deferred
    # violation to resolve by scanning the table at every later insert.
    writer.insert("member", columns, (
        (p.id, p.badge, p.first, p.last, f"{p.first}.{p.last}.{p.badge}@example.org".lower(), p.rank, p.unit,
         p.shift, p.supervisor_id, p.hire, p.status, demo_hash if p.badge in demo else None, created_at)
        for p in sorted(roster, key=lambda p: -LEVEL[p.rank])))
    roles = [(p.id, "officer") for p in roster]
    roles += [(p.id, demo[p.badge][3]) for p in roster if p.badge in demo and demo[p.badge][3] != "officer"]
    writer.insert("member_role", ("member_id", "role"), roles)
    by_badge = {p.badge: p.id for p in roster}
    return {"admin": by_badge["1005"], "coordinator": by_badge["1003"], "hr": by_badge["1004"]}


def _write_cycle(writer: BulkWriter, generator: Generator, cycle_id: int, year: int,
                 versions: list[VersionInfo], roster: list[Person], staff: dict[str, int], *,
                 current: bool, now: datetime, tz: str) -> None:
    """One annual cycle, opened on 2 January, and every member's progress through it."""
    opened = min(datetime.combine(date(year, 1, 2), time(9), ZoneInfo(tz)).astimezone(timezone.utc),
                 now - timedelta(days=1))
    writer.insert("cycle", ("id", "year", "name", "due_date", "grace_days", "audience", "created_at",
                            "created_by_id"),
                  [(cycle_id, year, f"{year} annual", date(year, 12, 31), 30,
                    json.dumps({"units": [], "ranks": []}), _naive_utc(opened), staff["admin"])])
    writer.insert("cycle_policy", ("cycle_id", "policy_version_id"), [(cycle_id, v.id) for v in versions])
    generator.ids["cycle"] = cycle_id
    generator.cycle(cycle_id=cycle_id, year=year, versions=versions, people=roster, current=current,
                    coordinator_id=staff["coordinator"])
    generator.flush()


def _settle(engine: Engine) -> None:
    """Leave the database as the app finds it in service."""
    if engine.dialect.name == "postgresql":
        # Statistics and the visibility map, which autovacuum would set within minutes; the
        # benchmark should not wait for it. The receipts' 2 GB are left to autovacuum.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            tables = [t for t in Base.metadata.tables if t != "receipt"]
            conn.execute(text(f"VACUUM (ANALYZE) {', '.join(tables)}"))
            conn.execute(text("ANALYZE receipt"))
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")  # as the app runs it


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=50_000, help="members on the roster (default 50000)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="SQLAlchemy URL (default $DATABASE_URL)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    parser.add_argument("--reset", action="store_true",
                        help="delete the SQLite file, or drop the PostgreSQL schema, first")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("give --database-url or set DATABASE_URL")
    started = clock.perf_counter()
    report = seed(args.database_url, people=args.people, seed_value=args.seed, reset=args.reset)
    elapsed = clock.perf_counter() - started
    print("rows: " + ", ".join(f"{table} {n:,}" for table, n in sorted(report.rows.items())))
    print("this year's statuses as generated (active members): "
          + ", ".join(f"{s} {n:,}" for s, n in sorted(report.intended.items(), key=lambda kv: -kv[1])))
    print(f"seeded {args.people:,} people in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
