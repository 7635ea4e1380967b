"""The ``flask --app app lms …`` commands, driven through the click runner."""
from __future__ import annotations

import shutil
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from lms import create_app
from lms.db import get_database, utcnow
from lms.models import Assignment, AuditEvent, Cycle, Member, MemberRole
from lms.services.clock import local_date
from seeds.demo import DEMO_PASSWORD, DEMO_PEOPLE
from tests.conftest import PG_URL, TEST_CONFIG, _reset_postgres


def scalar(app, statement):
    """One value from the app's database, read in a session of its own."""
    with get_database(app).sessionmaker() as session:
        return session.scalar(statement)


def rows(app, statement) -> list:
    """All rows from the app's database, read in a session of its own."""
    with get_database(app).sessionmaker() as session:
        return list(session.execute(statement).all())


def today(app) -> date:
    """The department's local date now."""
    return local_date(utcnow(), app.config["TIMEZONE"])


@pytest.fixture
def fresh_app(database_template, tmp_path):
    """Build another app on a fresh database. On PostgreSQL there is one test database, so this
    empties the one the ``app`` fixture uses: read what you need from it first."""
    apps = []

    def factory():
        instance = tmp_path / f"fresh-{len(apps)}"
        instance.mkdir()
        if PG_URL:
            app = create_app({**TEST_CONFIG, "DATABASE_URL": PG_URL, "INSTANCE_PATH": str(instance)})
            _reset_postgres(app, database_template[1])
        else:
            shutil.copy(database_template, instance / "test.sqlite3")
            app = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{instance / 'test.sqlite3'}",
                              "INSTANCE_PATH": str(instance)})
        apps.append(app)
        return app

    yield factory
    for app in apps:
        get_database(app).dispose()


# --- init -----------------------------------------------------------------------------------------

def test_init_brings_the_database_up_to_date(runner):
    result = runner.invoke(args=["lms", "init"])
    assert result.exit_code == 0, result.output
    assert "Loaded policy 16.3 Social Media: version 2013-11-26" in result.output
    assert result.output.rstrip().endswith("Database is up to date.")


# --- seed-demo ------------------------------------------------------------------------------------

def _personnel(app) -> list[tuple]:
    return rows(app, select(Member.badge, Member.first_name, Member.last_name, Member.unit,
                            Member.rank, Member.shift, Member.status).order_by(Member.badge))


def test_seed_demo_adds_personnel_a_cycle_and_the_demo_logins(app, runner, fresh_app):
    result = runner.invoke(args=["lms", "seed-demo", "--people", "8", "--seed", "1"])

    assert result.exit_code == 0, result.output
    assert "Seeded 8 personnel." in result.output
    assert f"Demo logins (password for all: {DEMO_PASSWORD}):" in result.output
    logins = [line.split() for line in result.output.splitlines() if line.startswith("  badge ")]
    assert [line[1] for line in logins] == ["1001", "1002", "1003", "1004", "1005", "1006"]
    names = {f"{first} {last}" for _, first, last, *_ in DEMO_PEOPLE}
    assert {" ".join(line[2:4]) for line in logins} == names
    assert scalar(app, select(func.count(Member.id))) == 8 + len(DEMO_PEOPLE)
    year = today(app).year
    assert rows(app, select(Cycle.year, Cycle.due_date)) == [(year, date(year, 12, 31))]
    # Every active member is assigned; people on leave or separated are not.
    assigned = select(func.count(func.distinct(Assignment.member_id))).join(Member)
    assert scalar(app, assigned.where(Member.status == "active")) == \
        scalar(app, select(func.count(Member.id)).where(Member.status == "active")) >= 5
    assert scalar(app, assigned.where(Member.status != "active")) == 0
    personnel = _personnel(app)

    # The same seed on a fresh database gives the same people.
    again = fresh_app()
    result = again.test_cli_runner().invoke(args=["lms", "seed-demo", "--people", "8", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert _personnel(again) == personnel


# --- cycle create ---------------------------------------------------------------------------------

@pytest.fixture
def roster(make_member):
    """Active members in two units and three ranks, plus one on leave and one separated."""
    return {
        "north": make_member(first="Ana", last="North", unit="Patrol North", rank="Officer"),
        "north_sgt": make_member(first="Ben", last="North", unit="Patrol North", rank="Sergeant"),
        "traffic": make_member(first="Cy", last="Traffic", unit="Traffic", rank="Officer"),
        "records": make_member(first="Di", last="Records", unit="Records", rank="Records Clerk"),
        "leave": make_member(first="Ed", last="Leave", unit="Patrol North", status="leave"),
        "gone": make_member(first="Flo", last="Gone", unit="Traffic", status="separated"),
    }


def _assigned(app) -> set[str]:
    return {badge for (badge,) in rows(app, select(Member.badge).join(Assignment).distinct())}


@pytest.mark.parametrize("filters, who", [
    ([], {"north", "north_sgt", "traffic", "records"}),
    (["--policy", "16.3"], {"north", "north_sgt", "traffic", "records"}),
    (["--unit", "Patrol North"], {"north", "north_sgt"}),
    (["--unit", "Patrol North", "--unit", "Traffic"], {"north", "north_sgt", "traffic"}),
    (["--rank", "Officer"], {"north", "traffic"}),
    (["--unit", "Patrol North", "--rank", "Sergeant"], {"north_sgt"}),
])
def test_cycle_create_assigns_active_members_matching_the_filters(app, runner, roster, filters, who):
    year = today(app).year + 1
    due = date(year, 3, 31)

    result = runner.invoke(args=["lms", "cycle", "create", "--year", str(year),
                                 "--due", due.isoformat(), *filters])

    assert result.exit_code == 0, result.output
    assert f"Opened cycle {year} annual: 16.3 (effective 2013-11-26); due {due.isoformat()}; " \
           f"{len(who)} members assigned." in result.output
    assert _assigned(app) == {roster[name].badge for name in who}
    assert rows(app, select(Cycle.year, Cycle.due_date)) == [(year, due)]
    assert set(rows(app, select(Assignment.due_date).distinct())) == {(due,)}


def test_a_second_cycle_in_a_year_needs_a_name_of_its_own(app, runner, roster):
    year = today(app).year + 1
    args = ["lms", "cycle", "create", "--year", str(year), "--due", f"{year}-03-31"]
    assert runner.invoke(args=args).exit_code == 0
    assigned = scalar(app, select(func.count(Assignment.id)))

    result = runner.invoke(args=[*args[:-1], f"{year}-06-30", "--unit", "Traffic"])
    assert result.exit_code == 1
    assert f"Error: {year} already has a cycle ({year} annual); give this one a name of its own" in result.stderr
    assert "(--name)" in result.stderr
    taken = runner.invoke(args=[*args[:-1], f"{year}-06-30", "--name", f"{year} Annual"])
    assert taken.exit_code == 1 and "already named" in taken.stderr
    assert rows(app, select(Cycle.year, Cycle.due_date)) == [(year, date(year, 3, 31))]
    assert scalar(app, select(func.count(Assignment.id))) == assigned

    second = runner.invoke(args=[*args[:-1], f"{year}-06-30", "--unit", "Traffic", "--name", f"{year} new hires"])
    assert second.exit_code == 0, second.output
    assert sorted(rows(app, select(Cycle.name, Cycle.due_date).where(Cycle.year == year))) == [
        (f"{year} annual", date(year, 3, 31)), (f"{year} new hires", date(year, 6, 30))]
    # The year alone no longer names one cycle: the error lists them; the name does.
    out = app.instance_path + "/roster.csv"
    ambiguous = runner.invoke(args=["lms", "roster", "--cycle", str(year), "--format", "csv", "--out", out])
    assert ambiguous.exit_code == 1
    assert f'{year} names several cycles' in ambiguous.stderr and f'"{year} new hires" ({year})' in ambiguous.stderr
    named = runner.invoke(args=["lms", "roster", "--cycle", f"{year} new hires", "--format", "csv", "--out", out])
    assert named.exit_code == 0, named.output
    new_hires = scalar(app, select(Cycle.id).where(Cycle.name == f"{year} new hires"))
    by_id = runner.invoke(args=["lms", "roster", "--cycle", str(new_hires), "--format", "csv", "--out", out])
    assert by_id.exit_code == 0 and "Wrote 1 roster row" in by_id.output


CYCLE_ERRORS = ["unknown policy", "one of two policies unknown", "due date in the past",
                "day-first date", "no such day", "year out of range"]


@pytest.mark.parametrize("case", CYCLE_ERRORS)
def test_cycle_create_errors_name_the_problem_and_write_nothing(app, runner, roster, case):
    year = today(app).year + 1
    due = ["--year", str(year), "--due", f"{year}-03-31"]
    yesterday = (today(app) - timedelta(days=1)).isoformat()
    args, code, message = {
        "unknown policy": ([*due, "--policy", "99.9"], 1,
                           "Error: unknown policy 99.9 (known: 16.3) (--policy)"),
        "one of two policies unknown": ([*due, "--policy", "16.3", "--policy", "16.4"], 1,
                                        "Error: unknown policy 16.4 (known: 16.3) (--policy)"),
        "due date in the past": (["--year", str(year), "--due", yesterday], 1,
                                 f"Error: due date {yesterday} is in the past (--due)"),
        "day-first date": (["--year", str(year), "--due", f"31/03/{year}"], 2, "Invalid value for '--due'"),
        "no such day": (["--year", str(year), "--due", f"{year}-02-30"], 2, "Invalid value for '--due'"),
        "year out of range": (["--year", "1999", "--due", f"{year}-03-31"], 1,
                              "Error: year must be between 2000 and 2100 (--year)"),
    }[case]

    result = runner.invoke(args=["lms", "cycle", "create", *args])

    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert isinstance(result.exception, SystemExit)
    assert scalar(app, select(func.count(Cycle.id))) == 0
    assert scalar(app, select(func.count(Assignment.id))) == 0


# --- create-user ----------------------------------------------------------------------------------

NEW_PASSWORD = "a long enough passphrase"


def create_user(runner, *args: str, password: str | None = NEW_PASSWORD):
    """Run ``lms create-user`` with the password on standard input."""
    if password is None:
        return runner.invoke(args=["lms", "create-user", *args])
    return runner.invoke(args=["lms", "create-user", *args, "--password-stdin"], input=f"{password}\n")


def _roles(app, badge: str) -> set[str]:
    return {role for (role,) in rows(app, select(MemberRole.role).join(Member).where(Member.badge == badge))}


def test_create_user_reads_the_password_from_stdin_and_can_sign_in(app, runner, auth, client):
    result = create_user(runner, "--badge", "4242", "--first", "Jo", "--last", "March", "--role", "officer",
                         "--unit", "Traffic", "--shift", "Day", "--rank", "Officer")

    assert result.exit_code == 0, result.output
    assert "Created Jo March (badge 4242); roles: officer." in result.output
    assert NEW_PASSWORD not in result.output
    member = rows(app, select(Member.unit, Member.shift, Member.rank, Member.status).where(Member.badge == "4242"))
    assert member == [("Traffic", "Day", "Officer", "active")]
    assert scalar(app, select(func.count(AuditEvent.id)).where(AuditEvent.action == "admin.create_user")) == 1

    assert auth.sign_in("4242", "not the password").status_code == 400
    response = auth.sign_in("4242", NEW_PASSWORD)
    assert response.status_code == 302 and response.headers["Location"].endswith("/training/")
    assert client.get("/training/").status_code == 200


def test_create_user_grants_a_second_role_to_the_same_badge(app, runner, auth):
    assert create_user(runner, "--badge", "4242", "--first", "Jo", "--last", "March", "--role", "officer").exit_code == 0

    # Same person (names compared without regard to case), no new password: a grant.
    result = create_user(runner, "--badge", "4242", "--first", "JO", "--last", "march", "--role", "coordinator",
                         password=None)

    assert result.exit_code == 0, result.output
    assert "Updated Jo March (badge 4242); roles: coordinator, officer." in result.output
    assert _roles(app, "4242") == {"officer", "coordinator"}
    assert scalar(app, select(func.count(Member.id))) == 1
    assert auth.sign_in("4242", NEW_PASSWORD).status_code == 302  # the password was kept


def test_create_user_refuses_a_badge_that_belongs_to_someone_else(app, runner):
    assert create_user(runner, "--badge", "4242", "--first", "Jo", "--last", "March", "--role", "officer").exit_code == 0

    result = create_user(runner, "--badge", "4242", "--first", "Meg", "--last", "March", "--role", "admin")

    assert result.exit_code == 1
    assert "Error: badge 4242 belongs to Jo March; badges are never reused" in result.stderr
    assert rows(app, select(Member.first_name).where(Member.badge == "4242")) == [("Jo",)]
    assert _roles(app, "4242") == {"officer"}


@pytest.mark.parametrize("password, message", [
    ("eleven char", "Error: password must be at least 12 characters"),
    ("", "Error: --password-stdin was given but standard input was empty"),
])
def test_create_user_refuses_a_short_or_empty_password(app, runner, password, message):
    result = create_user(runner, "--badge", "4242", "--first", "Jo", "--last", "March", "--role", "officer",
                         password=password)

    assert result.exit_code == 1
    assert message in result.stderr
    assert scalar(app, select(func.count(Member.id))) == 0


def test_create_user_takes_no_password_on_the_command_line(app, runner):
    result = runner.invoke(args=["lms", "create-user", "--badge", "4242", "--first", "Jo", "--last", "March",
                                 "--role", "officer", "--password", NEW_PASSWORD])

    assert result.exit_code == 2
    assert "No such option" in result.stderr and "--password" in result.stderr
    assert scalar(app, select(func.count(Member.id))) == 0
