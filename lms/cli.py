"""The ``flask --app app lms …`` commands: thin wrappers over the services."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from lms.bootstrap import init_database
from lms.db import get_session, utcnow
from lms.models import ROLES
from lms.services.accounts import AccountError, create_or_grant
from lms.services.clock import local_date
from lms.services.content import ContentError, content_report, load_packs
from lms.services.audit import record_event
from lms.services.cycles import CycleError, audience_size, create_cycle


@click.group("lms")
def lms() -> None:
    """Roll Call administration."""


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


@lms.command("init")
@with_appcontext
def init_command() -> None:
    """Create or upgrade the schema and load content/."""
    try:
        packs = init_database(current_app)
    except ContentError as exc:
        _fail("content/ has problems; nothing was loaded:\n" + "\n".join(f"  {p}" for p in exc.problems))
    for pack in packs:
        click.echo(f"Loaded policy {pack.id} {pack.title}: "
                   + ", ".join(f"version {v.effective.isoformat()}" for v in pack.versions))
    click.echo("Database is up to date.")


@lms.group("content")
def content_group() -> None:
    """Content packs under content/."""


@content_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@with_appcontext
def content_check(as_json: bool) -> None:
    """Validate content/ and print what each policy holds."""
    try:
        packs = load_packs(Path(current_app.config["CONTENT_DIR"]))
    except ContentError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        click.echo(f"{len(exc.problems)} problem(s) found.", err=True)
        sys.exit(1)
    report = content_report(packs)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for policy in report["policies"]:
        click.echo(f"Policy {policy['id']} {policy['title']}")
        for version in policy["versions"]:
            total = sum(version["questions"].values())
            click.echo(f"  version effective {version['effective']}: {version['lessons']} lessons, "
                       f"{total} questions")
            for topic, count in version["questions"].items():
                click.echo(f"    {topic}: {count}")
    click.echo("Content is valid.")


@lms.command("seed-demo")
@click.option("--people", default=60, show_default=True, type=click.IntRange(0, 100_000),
              help="How many Faker personnel to add.")
@click.option("--seed", default=2026, show_default=True, type=int, help="Random seed.")
@with_appcontext
def seed_demo_command(people: int, seed: int) -> None:
    """Add demo personnel and progress through this year's cycle, then print the demo logins."""
    from seeds.demo import DEMO_PASSWORD, seed_demo

    session = get_session()
    logins = seed_demo(session, people=people, seed=seed, now=utcnow(),
                       tz=current_app.config["TIMEZONE"],
                       hash_method=current_app.config["PASSWORD_HASH_METHOD"],
                       department=current_app.config["DEPARTMENT_NAME"])
    session.commit()
    click.echo(f"Seeded {people} personnel.")
    print_logins(logins, DEMO_PASSWORD)


def print_logins(logins, password: str) -> None:
    """The demo logins, one a line."""
    click.echo(f"Demo logins (password for all: {password}):")
    for login in logins:
        click.echo(f"  badge {login.badge:<6} {login.name:<18} {login.about}")


@lms.group("cycle")
def cycle_group() -> None:
    """Training cycles."""


# The option that carries each input create_cycle can blame; the service's names are not the CLI's.
_CYCLE_OPTIONS = {"year": "--year", "due_date": "--due", "policy": "--policy", "grace_days": "--grace-days"}


@cycle_group.command("create")
@click.option("--year", required=True, type=int)
@click.option("--due", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="Due date, YYYY-MM-DD.")
@click.option("--policy", "policies", multiple=True, help="Policy id; repeat for several (default: all).")
@click.option("--unit", "units", multiple=True, help="Limit the audience to a unit; repeatable.")
@click.option("--rank", "ranks", multiple=True, help="Limit the audience to a rank; repeatable.")
@click.option("--grace-days", default=30, show_default=True, type=int,
              help="Days a member who joins the audience late has to complete.")
@with_appcontext
def cycle_create(year: int, due, policies, units, ranks, grace_days: int) -> None:
    """Open a training cycle for an audience."""
    session = get_session()
    now = utcnow()
    try:
        cycle = create_cycle(session, year=year, due_date=due.date(),
                             today=local_date(now, current_app.config["TIMEZONE"]), now=now,
                             policy_ids=list(policies), units=list(units), ranks=list(ranks),
                             grace_days=grace_days)
    except CycleError as exc:
        session.rollback()
        _fail(f"{exc} ({_CYCLE_OPTIONS.get(exc.field, exc.field)})" if exc.field else str(exc))
    session.commit()
    versions = ", ".join(f"{v.policy_id} (effective {v.effective.isoformat()})" for v in cycle.policy_versions)
    members = audience_size(session, cycle.id)
    click.echo(f"Opened cycle {cycle.name}: {versions}; due {cycle.due_date.isoformat()}; "
               f"{members} members assigned.")


@lms.command("create-user")
@click.option("--badge", required=True)
@click.option("--first", "first_name", required=True)
@click.option("--last", "last_name", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--unit")
@click.option("--shift")
@click.option("--rank")
@click.option("--email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def create_user(badge, first_name, last_name, role, unit, shift, rank, email, password_stdin) -> None:
    """Add a person or grant a role. The password is read from standard input, never argv."""
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            _fail("--password-stdin was given but standard input was empty")
    session = get_session()
    try:
        member, created = create_or_grant(
            session, badge=badge, first_name=first_name, last_name=last_name, role=role, unit=unit,
            shift=shift, rank=rank, email=email, password=password,
            hash_method=current_app.config["PASSWORD_HASH_METHOD"])
    except AccountError as exc:
        session.rollback()
        _fail(str(exc))
    record_event(session, "admin.create_user" if created else "admin.grant_role", at=utcnow(),
                 target=f"member:{member.id}", details={"role": role, "via": "cli"})
    session.commit()
    verb = "Created" if created else "Updated"
    click.echo(f"{verb} {member.full_name} (badge {member.badge}); roles: {', '.join(sorted(member.role_names))}.")

