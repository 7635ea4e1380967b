"""The ``flask --app app lms …`` commands: thin wrappers over the services."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from lms.db import get_session, utcnow
from lms.models import ROLES
from lms.services.audit import record_event
from lms.services.clock import local_date
from lms.transaction import after_commit, keep_on_error, on_rollback

# Each command imports the services it uses when it runs: every ``flask`` invocation (and the app
# itself) loads this module, and a command should not pay for the others' dependencies (Alembic,
# YAML, the content and personnel rules) before it starts (docs/performance.md).


class _Date(click.DateTime):
    """A YYYY-MM-DD date within the years a department's records can mean (the rule the web
    forms and the personnel import apply: lms.services.validators.date_problem)."""

    name = "date"

    def __init__(self) -> None:
        super().__init__(formats=["%Y-%m-%d"])

    def convert(self, value, param, ctx):
        moment = super().convert(value, param, ctx)
        from lms.services.validators import date_problem

        problem = date_problem(moment.date())
        if problem:
            self.fail(problem, param, ctx)
        return moment


_DATE = _Date()


class _Command(click.Command):
    """A command run in one transaction (lms.transaction.run_command): committed when it
    returns or exits 0, rolled back when it fails, unless it called keep_on_error first (a failure
    that is audited on purpose). Commands never commit by hand."""

    def invoke(self, ctx: click.Context):
        from flask.cli import ScriptInfo

        from lms.transaction import run_command

        def body():
            return run_command(lambda: super(_Command, self).invoke(ctx))

        if current_app:
            return body()
        # The app context is held here, around the transaction, rather than by with_appcontext,
        # which click closes first when a command calls ctx.exit().
        with ctx.ensure_object(ScriptInfo).load_app().app_context():
            return body()


class _Group(click.Group):
    """A command group whose commands, and subgroups' commands, each run in one transaction."""

    command_class = _Command
    group_class = type  # subgroups are _Group too


@click.group("lms", cls=_Group)
def lms() -> None:
    """Roll Call administration."""


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


@lms.command("init")
@with_appcontext
def init_command() -> None:
    """Create or upgrade the schema and load content/."""
    from lms.bootstrap import init_database
    from lms.services.content import ContentError
    from lms.services.receipt_signature import SigningConfigError, describe_signing

    try:
        packs = init_database(current_app)
    except ContentError as exc:
        _fail("content/ has problems; nothing was loaded:\n" + "\n".join(f"  {p}" for p in exc.problems))
    except SigningConfigError as exc:
        _fail(f"receipt signing is misconfigured; nothing was changed: {exc}")
    for pack in packs:
        click.echo(f"Loaded policy {pack.id} {pack.title}: "
                   + ", ".join(f"version {v.effective.isoformat()}" for v in pack.versions))
    click.echo(describe_signing(current_app.config, current_app.instance_path))
    click.echo("Database is up to date.")


@lms.group("content")
def content_group() -> None:
    """Content packs under content/."""


@content_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@with_appcontext
def content_check(as_json: bool) -> None:
    """Validate content/ and print what each policy holds."""
    from lms.services.content import ContentError, content_report, load_packs
    from lms.services.versions import flagged_questions

    try:
        packs = load_packs(Path(current_app.config["CONTENT_DIR"]))
    except ContentError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        click.echo(f"{len(exc.problems)} problem(s) found.", err=True)
        sys.exit(1)
    from lms.services.quiz_cues import check_packs

    report = content_report(packs)
    # Flags are warnings, not errors: the author re-reads each question against the new text.
    for flag in flagged_questions(packs):
        click.echo(f"Flag: {flag}", err=True)
    # Item cues are warnings too; the pack fails only when the bank as a whole is above its
    # thresholds (a member passing by form), so one odd item does not block a release.
    cue_problems, cue_notes = check_packs(packs)
    for note in cue_notes:
        click.echo(f"Cue: {note}", err=True)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        _fail_on_cues(cue_problems)
        return
    for policy in report["policies"]:
        click.echo(f"Policy {policy['id']} {policy['title']}")
        for version in policy["versions"]:
            total = sum(version["questions"].values())
            click.echo(f"  version effective {version['effective']}: {version['lessons']} lessons, "
                       f"{total} questions")
            for topic, count in version["questions"].items():
                click.echo(f"    {topic}: {count}")
            cues = version["cues"]
            worst = cues["best_blind_strategy"]
            click.echo(f"    cues: key longest in {cues['key_longest']['questions']} of "
                       f"{cues['key_longest']['of']} single-answer questions "
                       f"({cues['key_longest']['percent']:g}%); best scenario-blind strategy "
                       f"({worst}) passes {cues['blind_pass_rate'][worst]:.2f}% of first attempts; "
                       f"reading grade keys {cues['reading_grade']['keys']:g}, "
                       f"wrong options {cues['reading_grade']['wrong']:g}")
    _fail_on_cues(cue_problems)
    click.echo("Content is valid.")


def _fail_on_cues(problems: list[str]) -> None:
    """Exit non-zero naming each cue threshold the content is above."""
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        click.echo(f"{len(problems)} problem(s) found.", err=True)
        sys.exit(1)


@lms.command("seed-demo")
@click.option("--people", default=60, show_default=True, type=click.IntRange(0, 100_000),
              help="How many Faker personnel to add.")
@click.option("--seed", default=2026, show_default=True, type=int, help="Random seed.")
@with_appcontext
def seed_demo_command(people: int, seed: int) -> None:
    """Add demo personnel and progress through this year's cycle, then print the demo logins."""
    from lms.services.receipt_signature import receipt_sealer
    from seeds.demo import DEMO_PASSWORD, seed_demo

    session = get_session()
    logins = seed_demo(session, people=people, seed=seed, now=utcnow(),
                       tz=current_app.config["TIMEZONE"],
                       hash_method=current_app.config["PASSWORD_HASH_METHOD"],
                       department=current_app.config["DEPARTMENT_NAME"],
                       sealer=receipt_sealer(current_app.config, current_app.instance_path))
    record_event(session, "demo.seed", at=utcnow(), details={"people": people, "seed": seed, "via": "cli"})
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


# The option that carries each input the cycle service can blame; the service's names are not the CLI's.
_CYCLE_OPTIONS = {"year": "--year", "name": "--name", "due_date": "--due", "policy": "--policy",
                  "grace_days": "--grace-days", "units": "--unit", "ranks": "--rank", "shifts": "--shift",
                  "cycle": "--cycle"}


def _cycle_fail(exc) -> None:
    """Exit 1 with a CycleError's message and the option at fault."""
    get_session().rollback()
    _fail(f"{exc} ({_CYCLE_OPTIONS.get(exc.field, exc.field)})" if exc.field else str(exc))


def _find_cycle(ref: str):
    """The cycle ``--cycle`` names (a name, an id, or a year that has one cycle), or exit 1 listing
    the cycles."""
    from lms.services.cycles import CycleError, find_cycle

    try:
        return find_cycle(get_session(), ref)
    except CycleError as exc:
        _cycle_fail(exc)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


_CYCLE_REF_HELP = "The cycle: its name, its id, or its year when the year has one cycle."


@cycle_group.command("create")
@click.option("--year", required=True, type=int)
@click.option("--name", help="The cycle's name, unique across years (default \"YEAR annual\" for a year's "
                             "first cycle; required after).")
@click.option("--due", required=True, type=_DATE, help="Due date, YYYY-MM-DD.")
@click.option("--policy", "policies", multiple=True, help="Policy id; repeat for several (default: all).")
@click.option("--unit", "units", multiple=True, help="Limit the audience to a unit; repeatable.")
@click.option("--rank", "ranks", multiple=True, help="Limit the audience to a rank; repeatable.")
@click.option("--shift", "shifts", multiple=True, help="Limit the audience to a shift; repeatable.")
@click.option("--grace-days", default=30, show_default=True, type=int,
              help="Days a member who joins the audience late has to complete.")
@click.option("--dry-run", is_flag=True, help="Check and print how many members it would assign; open nothing.")
@with_appcontext
def cycle_create(year: int, name, due, policies, units, ranks, shifts, grace_days: int, dry_run: bool) -> None:
    """Open a training cycle for an audience."""
    from lms.services.cycles import CycleError, audience_size, create_cycle, plan_cycle, record_cycle_opened

    session = get_session()
    now = utcnow()
    values = dict(year=year, name=name, due_date=due.date(), today=local_date(now, current_app.config["TIMEZONE"]),
                  policy_ids=list(policies), units=list(units), ranks=list(ranks), shifts=list(shifts),
                  grace_days=grace_days)
    try:
        if dry_run:
            plan = plan_cycle(session, **values)
            session.rollback()
            click.echo(f"Would open cycle {plan.name}: {_plural(plan.members, 'member')} assigned, due "
                       f"{plan.due_date.isoformat()} (dry run: nothing opened).")
            return
        cycle = create_cycle(session, now=now, **values)
    except CycleError as exc:
        _cycle_fail(exc)
    members = audience_size(session, cycle.id)
    record_cycle_opened(session, cycle, members=members, actor_id=None, ip=None, now=now, via="cli")
    versions = ", ".join(f"{v.policy_id} (effective {v.effective.isoformat()})" for v in cycle.policy_versions)
    click.echo(f"Opened cycle {cycle.name}: {versions}; due {cycle.due_date.isoformat()}; "
               f"{members} members assigned.")
    click.echo(f"Its id is {cycle.id}; --cycle takes the id or the name.")


@cycle_group.command("list")
@with_appcontext
def cycle_list() -> None:
    """Every cycle: id, year, name, due date, whether closed, members assigned."""
    from sqlalchemy import select

    from lms.models import Cycle
    from lms.services.cycles import audience_size

    session = get_session()
    cycles = list(session.scalars(select(Cycle).order_by(Cycle.year, Cycle.id)))
    if not cycles:
        click.echo("No cycles yet.")
    for cycle in cycles:
        state = "closed" if cycle.closed_at else "open"
        click.echo(f"{cycle.id:>5}  {cycle.year}  {cycle.name:<30}  due {cycle.due_date.isoformat()}  {state:<6}  "
                   f"{_plural(audience_size(session, cycle.id), 'member')}")


@cycle_group.command("edit")
@click.option("--cycle", "ref", required=True, help=_CYCLE_REF_HELP)
@click.option("--name", help="A new name, unique across years.")
@click.option("--due", type=_DATE, help="A new due date, YYYY-MM-DD.")
@click.option("--grace-days", type=int, help="New grace days for late joiners.")
@click.option("--unit", "units", multiple=True, help="The audience's units (replaces them); repeatable.")
@click.option("--rank", "ranks", multiple=True, help="The audience's ranks (replaces them); repeatable.")
@click.option("--shift", "shifts", multiple=True, help="The audience's shifts (replaces them); repeatable.")
@click.option("--everyone", is_flag=True, help="Clear the audience's filters: every active member.")
@click.option("--dry-run", is_flag=True, help="Check and print what would change; change nothing.")
@with_appcontext
def cycle_edit(ref: str, name, due, grace_days, units, ranks, shifts, everyone: bool, dry_run: bool) -> None:
    """Change a cycle's name, due date, grace days or audience. A new audience is synced at once:
    members it takes in are assigned; members it leaves out lose only assignments they had not
    started; nothing signed is ever removed."""
    from lms.services.cycles import CycleError, edit_cycle, plan_edit

    if everyone and (units or ranks or shifts):
        _fail("--everyone clears the audience; leave out --unit, --rank and --shift with it")
    session = get_session()
    cycle = _find_cycle(ref)
    now = utcnow()
    audience = {key: [] if everyone else list(cycle.audience.get(key) or []) for key in ("units", "ranks", "shifts")}
    for key, given in (("units", units), ("ranks", ranks), ("shifts", shifts)):
        if given:
            audience[key] = list(given)
    values = dict(name=cycle.name if name is None else name, due_date=due.date() if due else cycle.due_date,
                  grace_days=cycle.grace_days if grace_days is None else grace_days,
                  today=local_date(now, current_app.config["TIMEZONE"]), **audience)
    try:
        if dry_run:
            change = plan_edit(session, cycle, **values)
            session.rollback()
        else:
            change = edit_cycle(session, cycle, now=now, actor_id=None, ip=None, via="cli", **values)
    except CycleError as exc:
        _cycle_fail(exc)
    changed = "; ".join(f"{key} {before} -> {after}" for key, (before, after) in change.changes.items()) or "nothing"
    click.echo(f"{'Would change' if dry_run else 'Changed'} cycle {change.name} (id {cycle.id}): {changed}. "
               f"{_plural(change.members, 'member')} in the audience; {change.added} added, {change.removed} removed, "
               f"{change.kept} kept (started or signed)" + (" (dry run: nothing changed)." if dry_run else "."))


@cycle_group.command("close")
@click.option("--cycle", "ref", required=True, help=_CYCLE_REF_HELP)
@with_appcontext
def cycle_close(ref: str) -> None:
    """Close a cycle: no new signatures; it stays readable and in the rosters."""
    from lms.services.cycles import CycleError, close_cycle

    cycle = _find_cycle(ref)
    try:
        close_cycle(get_session(), cycle, now=utcnow(), actor_id=None, ip=None, via="cli")
    except CycleError as exc:
        _cycle_fail(exc)
    click.echo(f"Closed cycle {cycle.name} (id {cycle.id}): no new signatures; its roster stays.")


@cycle_group.command("delete")
@click.option("--cycle", "ref", required=True, help=_CYCLE_REF_HELP)
@with_appcontext
def cycle_delete(ref: str) -> None:
    """Delete a cycle nobody has started (otherwise close it)."""
    from lms.services.cycles import CycleError, delete_cycle

    cycle = _find_cycle(ref)
    name, cycle_id = cycle.name, cycle.id
    try:
        delete_cycle(get_session(), cycle, now=utcnow(), actor_id=None, ip=None, via="cli")
    except CycleError as exc:
        _cycle_fail(exc)
    click.echo(f"Deleted cycle {name} (id {cycle_id}).")


@lms.command("verify")
@click.option("--receipt", "receipt_file", type=click.File("rb"), metavar="FILE.pdf",
              help="Check whether this receipt PDF matches a stored record, and its digital signature, "
                   "instead of the chain.")
@with_appcontext
def verify_command(receipt_file) -> None:
    """Verify the whole acknowledgment chain and its anchors, or one receipt; exit 1 naming the
    first bad record or anchor.

    With --receipt: exit 0 when the receipt's record stands, 1 when no record matches, 3 when its
    acknowledgment was voided, 4 when the stored record was altered since signing, 5 when the
    record stands but the file's PDF signature does not verify.
    """
    from lms.services.verification import check_receipt, verify_chain

    session = get_session()
    if receipt_file is not None:
        pdf_bytes = receipt_file.read()
        signature = _receipt_signature(pdf_bytes)
        check = check_receipt(session, pdf_bytes, file_name=Path(receipt_file.name).name,
                              actor_id=None, ip=None, now=utcnow(), via="cli", signature=signature)
        keep_on_error()  # every outcome is audited, whatever exit status it reports
        if check.match is None:
            click.echo(f"Receipt does not match any stored record: {receipt_file.name} is not a receipt "
                       "this system issued, or it was altered.")
        else:
            _print_receipt_match(check.match)
        _print_signature(signature)
        if check.outcome == "altered":
            click.echo("But the stored record no longer matches its own hash: it was altered after "
                       "signing. Run 'flask --app app lms verify' for the whole chain.")
        elif check.outcome == "voided":
            click.echo(f"This acknowledgment was VOIDED on {check.void.voided_at:%Y-%m-%d}: it no longer counts "
                       "as the member's acknowledgment of this policy version.")
        sys.exit(check.exit_code)
    from lms.services.anchoring import verify_anchors

    report = verify_chain(session)
    anchors = verify_anchors(session, department_certs=_department_certs(), tsa_trusted=_tsa_trusted())
    failure = report.failure or anchors.failure
    record_event(session, "chain.verify", at=utcnow(), outcome="success" if failure is None else "failure",
                 details={"records": report.records, "anchors": anchors.anchors,
                          "failure": str(report.failure) if report.failure else None,
                          "anchor_failure": str(anchors.failure) if anchors.failure else None, "via": "cli"})
    keep_on_error()  # a failed verification is audited too
    if not report.ok:
        click.echo(f"Chain verification failed at the first bad record: {report.failure}")
        click.echo(f"{_count(report.records, 'record')} before it verified.")
    else:
        click.echo(f"Chain verified: {report.records} records ({_count(report.acknowledgments, 'acknowledgment')}, "
                   f"{_count(report.voids, 'void')}).")
        click.echo(f"Chain head: sequence {report.head_sequence}, hash {report.head_hash}")
    if anchors.failure:
        click.echo(f"Anchor verification failed: {anchors.failure}")
    elif anchors.anchors:
        latest = anchors.latest
        methods = ", ".join(f"{n} {method}" for method, n in sorted(anchors.by_method.items()))
        click.echo(f"Anchors verified: {anchors.anchors} ({methods}); the latest covers sequence "
                   f"{latest.sequence}, on {latest.token_time.isoformat(timespec='seconds')} by {latest.authority}.")
    else:
        click.echo("No anchors yet: run 'flask --app app lms anchor' daily, so a rewrite of the whole chain "
                   "would show.")
    for authority in anchors.unpinned_authorities:
        click.echo(f"Note: anchors by {authority} were checked against the token's own certificate only; "
                   "set LMS_TSA_CERT to the authority's certificate so a forged authority would show.")
    if failure is not None:
        sys.exit(1)


@lms.command("anchor")
@with_appcontext
def anchor_command() -> None:
    """Store a timestamp token over the chain head (RFC 3161 from LMS_TSA_URL, or a signature with
    the department key without one); run it daily."""
    from lms.services.anchoring import METHOD_NOTES, AnchorError, anchor_as_configured
    from lms.services.receipt_signature import SigningConfigError

    session = get_session()
    try:
        anchor = anchor_as_configured(session, config=current_app.config, instance_path=current_app.instance_path,
                                      now=utcnow())
    except (AnchorError, SigningConfigError) as exc:
        session.rollback()
        record_event(session, "chain.anchor", at=utcnow(), outcome="failure", details={"problem": str(exc)})
        keep_on_error()  # the failure is audited
        _fail(f"nothing was anchored: {exc}")
    click.echo(f"Anchored the chain head: sequence {anchor.sequence}, hash {anchor.head_hash}, "
               f"at {anchor.token_time.isoformat(timespec='seconds')} by {anchor.authority}.")
    click.echo(f"Stored {METHOD_NOTES[anchor.method]}.")


def _tsa_trusted() -> tuple:
    """The certificates of LMS_TSA_CERT, if set."""
    from lms.services.receipt_signature import load_certificates

    path = current_app.config.get("TSA_CERT")
    return load_certificates(path) if path else ()


def _department_certs() -> tuple:
    """The department's receipt-signing certificate (and its chain); none if misconfigured."""
    from lms.services.receipt_signature import SigningConfigError, signing_identity

    try:
        identity = signing_identity(current_app.config, current_app.instance_path)
    except SigningConfigError as exc:
        click.echo(f"Warning: {exc}", err=True)
        return ()
    return (identity.certificate, *identity.chain)


def _receipt_signature(pdf_bytes: bytes):
    """The receipt's PDF signature, checked against the department's certificate."""
    from lms.services.receipt_signature import check_signature

    return check_signature(pdf_bytes, trusted=_department_certs(), tsa_trusted=_tsa_trusted())


def _print_signature(check) -> None:
    """What the receipt's digital signature says."""
    if check.status == "unsigned":
        click.echo("  PDF signature:     none (receipts issued before signing began carry none)")
        return
    if check.status == "unreadable":
        click.echo(f"  PDF signature:     cannot be read: {check.problem}")
        return
    verdict = ("valid: the file is exactly as signed" if check.status == "valid"
               else f"BROKEN: {check.problem}")
    click.echo(f"  PDF signature:     {verdict}")
    whose = ("the department's receipt-signing certificate" if check.department_certificate
             else "not the receipt-signing certificate configured here")
    click.echo(f"  Signed by:         {check.signer} ({whose}"
               f"{', self-signed' if check.self_signed else ''})")
    click.echo(f"  Certificate:       SHA-256 fingerprint {check.fingerprint}")
    if check.timestamp is not None:
        click.echo(f"  Timestamp:         {check.timestamp.isoformat(timespec='seconds')} from {check.timestamp_authority}")
    elif check.timestamp_broken:
        click.echo("  Timestamp:         present but does NOT verify")
    else:
        click.echo("  Timestamp:         none (the time is the signer's own claim)")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _print_receipt_match(match) -> None:
    """The essentials of the record a receipt belongs to, and whether it still stands."""
    ack = match.acknowledgment
    click.echo(f"Receipt matches stored acknowledgment #{ack.id} (sequence {ack.sequence}).")
    click.echo(f"  Name:              {ack.printed_name}")
    click.echo(f"  Badge:             {ack.badge}")
    click.echo(f"  Policy:            {ack.policy_ref} {ack.policy_title}")
    click.echo(f"  Version:           effective {ack.policy_effective.isoformat()}")
    click.echo(f"  Signed at:         {ack.signed_at_local} ({ack.signed_at.isoformat(timespec='seconds')})")
    click.echo(f"  Verification code: {ack.verification_code}")
    if match.void is None:
        click.echo("  Voided:            no")
    else:
        void = match.void
        click.echo(f"  Voided:            YES, on {void.voided_at.isoformat(timespec='seconds')} "
                   f"(chain sequence {void.sequence}): {void.reason}")


@lms.command("import-personnel")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and show what would change; write nothing.")
@click.option("--full-roster", is_flag=True,
              help="The file lists everyone: report members missing from it.")
@click.option("--separate-missing", is_flag=True,
              help="With --full-roster: mark the members missing from the file separated.")
@click.option("--effective", type=_DATE,
              help="The date the file's changes of status, unit, shift, rank and supervisor take effect, "
                   "YYYY-MM-DD (default: today, department time).")
@click.option("--invite", "send_invitations", is_flag=True,
              help="E-mail every member of the file who has no password yet a link to set one.")
@with_appcontext
def import_personnel(file: Path, dry_run: bool, full_roster: bool, separate_missing: bool, effective,
                     send_invitations: bool) -> None:
    """Upsert personnel from CSV by badge: all rows or none. Changes of status, unit, shift, rank
    and supervisor are appended to each member's history with their effective date; --invite
    e-mails new members a one-time link to set their password."""
    from lms.services.personnel import PersonnelImportError, apply_import, plan_import

    if separate_missing and not full_roster:
        _fail("--separate-missing needs --full-roster")
    now = utcnow()
    today = local_date(now, current_app.config["TIMEZONE"])
    effective = effective.date() if effective else today
    from lms.services.personnel_history import effective_problem

    if effective_problem(effective, today):
        _fail(f"{effective_problem(effective, today)} (--effective)")
    try:
        data = file.read_bytes()
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror}")
    session = get_session()
    try:
        plan = plan_import(session, data, ranks=current_app.config["RANKS"],
                           max_bytes=current_app.config["IMPORT_MAX_BYTES"], full_roster=full_roster,
                           effective=effective)
    except PersonnelImportError as exc:
        for problem in exc.problems:
            click.echo(f"{file}: {problem}", err=True)
        _fail(f"{len(exc.problems)} problem(s); nothing was imported")
    when = "today" if effective == today else ("a past date" if effective < today else "a future date")
    click.echo(f"{file}: {len(plan.rows)} rows: {len(plan.adds)} to add, {len(plan.changes)} to "
               f"change ({len(plan.separations)} separations), {plan.unchanged} unchanged; "
               f"effective {effective.isoformat()} ({when}).")
    for row, diff in plan.changes:
        fields = "; ".join(f"{name} {old!r} -> {new!r}" for name, (old, new) in diff.items())
        click.echo(f"  line {row.line}: badge {row.badge}: {fields}")
    if plan.missing:
        verb = "will be marked separated" if separate_missing else "are not in the file (use --separate-missing to separate them)"
        click.echo(f"{len(plan.missing)} members {verb}: "
                   + ", ".join(f"{m.badge} {m.full_name}" for m in plan.missing[:20])
                   + (" …" if len(plan.missing) > 20 else ""))
    if dry_run:
        click.echo("Dry run: nothing was written.")
        return
    now = utcnow()
    if not plan.has_changes and not (separate_missing and plan.missing):
        click.echo("No changes: the roster already matches this file.")
    else:
        counts = apply_import(session, plan, separate_missing=separate_missing, actor_id=None, ip=None,
                              now=now, today=today, source=f"cli:{file.name}")
        click.echo(f"Imported: {counts['added']} added, {counts['changed']} changed, "
                   f"{counts['separated']} separated.")
    if send_invitations:
        from lms.jobs import wake
        from lms.services.invitations import InvitationSettings, invite, members_to_invite_from_import

        # In the import's transaction: the roster and the invitation e-mails commit together.
        invited = invite(session, members_to_invite_from_import(session, [row.badge for row in plan.rows]),
                         now=now, by_id=None, ip=None, settings=InvitationSettings.from_config(current_app.config),
                         skip_open=True)
        click.echo(f"Invitations queued for {len(invited.sent)} member(s).")
        for member, why in invited.skipped:
            click.echo(f"  not invited: {member.badge} {member.full_name}: {why}")
    if send_invitations and invited.sent:
        after_commit(wake, current_app._get_current_object())


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
    from lms.services.accounts import AccountError, create_or_grant

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
            hash_method=current_app.config["PASSWORD_HASH_METHOD"], now=utcnow(),
            today=local_date(utcnow(), current_app.config["TIMEZONE"]))
    except AccountError as exc:
        session.rollback()
        _fail(str(exc))
    record_event(session, "admin.create_user" if created else "admin.grant_role", at=utcnow(),
                 target=f"member:{member.id}", details={"role": role, "via": "cli"})
    verb = "Created" if created else "Updated"
    click.echo(f"{verb} {member.full_name} (badge {member.badge}); roles: {', '.join(sorted(member.role_names))}.")


@lms.command("grant-attempts")
@click.option("--cycle", "ref", required=True, help=_CYCLE_REF_HELP)
@click.option("--badge", required=True, help="The member who gets the attempts.")
@click.option("--policy", help="The policy, e.g. 16.3 (needed when the cycle assigns several).")
@click.option("--attempts", required=True, type=int, help="How many extra attempts, 1 to 10.")
@click.option("--reason", required=True, help="Why; kept on the record and in the audit log.")
@click.option("--by", "by_badge", required=True, help="The granting coordinator's badge.")
@with_appcontext
def grant_attempts_command(ref: str, badge: str, policy, attempts: int, reason: str, by_badge: str) -> None:
    """Grant a member extra quiz attempts. The granting coordinator's password is read from
    standard input (never argv); a wrong one counts toward their lockout."""
    from lms.services.accounts import SignInRules, count_reauthentication_failure, find_member
    from lms.services.attempt_grants import GrantError, find_assignment, grant_attempts

    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        _fail("type the password of the coordinator --by names on standard input")
    session = get_session()
    cycle = _find_cycle(ref)
    coordinator = find_member(session, by_badge)
    if coordinator is None:
        _fail(f"no member has badge {by_badge}")
    now = utcnow()
    if coordinator.is_locked(now):
        _fail(f"the account of badge {by_badge} is locked")
    try:
        assignment = find_assignment(session, cycle=cycle, badge=badge, policy_id=policy)
        grant = grant_attempts(session, assignment=assignment, granted_by=coordinator, password=password,
                               attempts=attempts, reason=reason, now=now, ip=None)
    except GrantError as exc:
        session.rollback()
        if "password" in exc.problems:
            count_reauthentication_failure(session, coordinator, action="quiz.grant_attempts", now=now,
                                           ip=None, rules=SignInRules.from_config(current_app.config))
            keep_on_error()  # the wrong password counts toward the coordinator's lockout
        _fail(str(exc))
    member = assignment.member
    click.echo(f"Granted {member.full_name} (badge {member.badge}) {grant.attempts} more attempt"
               f"{'s' if grant.attempts != 1 else ''} at policy {assignment.policy_version.policy_id} "
               f"in the {cycle.name} cycle.")




@lms.command("export-acks")
@click.option("--policy", help="Policy id, e.g. 16.3.")
@click.option("--version", type=_DATE, help="The version's effective date, YYYY-MM-DD.")
@click.option("--unit", help="Only members now in this unit.")
@click.option("--since", type=_DATE, help="Signed on or after this day (department time), YYYY-MM-DD.")
@click.option("--until", type=_DATE, help="Signed on or before this day (department time), YYYY-MM-DD.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The ZIP file to write.")
@with_appcontext
def export_acks(policy, version, unit, since, until, out: Path) -> None:
    """Signed receipts plus manifest.csv, as a ZIP. Voided acknowledgments are left out."""
    import os
    import tempfile

    from lms.services.exports import ExportError, ExportFilters, check_filters, count_acknowledgments, write_ack_zip
    from lms.services.roster_export import nothing_matches

    filters = ExportFilters(policy=policy, version=version and version.date(), unit=unit,
                            since=since and since.date(), until=until and until.date())
    session = get_session()
    try:
        check_filters(session, filters)
    except ExportError as exc:
        _fail("; ".join(f"{message} (--{name})" for name, message in exc.problems.items()))
    if not out.parent.is_dir():
        _fail(f"folder {out.parent} does not exist (--out)")
    if count_acknowledgments(session, filters, current_app.config["TIMEZONE"]) == 0:
        _fail(nothing_matches("signed acknowledgments") + " No ZIP was written.")
    now = utcnow()
    # Written beside the target and renamed into place once complete and audited, so a failure
    # leaves no partial ZIP; mkstemp makes it readable by its owner only.
    fd, partial = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w+b") as handle:
            result = write_ack_zip(session, handle, filters, tz=current_app.config["TIMEZONE"], now=now)
        record_event(session, "hr.export", at=now, target="acknowledgments",
                     details={"count": result.count, "bytes": result.bytes_written,
                              "filters": filters.as_details(), "via": "cli", "out": str(out.resolve())})
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    # Into place only once its audit record is committed; removed if that fails.
    after_commit(os.replace, partial, out)
    after_commit(click.echo, f"Exported {result.count} acknowledgment{'' if result.count == 1 else 's'} to {out}.")
    on_rollback(Path(partial).unlink, missing_ok=True)


@lms.command("roster")
@click.option("--cycle", "ref", required=True, metavar="YEAR|NAME|ID", help=_CYCLE_REF_HELP)
@click.option("--policy", help="Only this policy, e.g. 16.3.")
@click.option("--unit", "units", multiple=True, help="Only members in this unit; repeatable.")
@click.option("--status", "statuses", multiple=True,
              help="Only rows with this status (not_started, in_progress, quiz_failed, quiz_passed, complete, "
                   "complete_late, overdue, exempt, or not_done for every status short of complete, "
                   "complete_late or exempt); repeatable.")
@click.option("--as-of", "as_of", type=_DATE,
              help="The roster as it stood at the end of this day (department time), YYYY-MM-DD.")
@click.option("--format", "fmt", required=True, type=click.Choice(["csv", "xlsx", "pdf"]),
              help="CSV (the contract's columns), XLSX, or PDF (every row laid out; refused beyond ROSTER_PDF_MAX_ROWS rows).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The file to write.")
@with_appcontext
def roster_command(ref: str, policy, units, statuses, as_of, fmt: str, out: Path) -> None:
    """The compliance roster of a cycle, sorted by last name, as CSV, XLSX or PDF."""
    import gc
    import os
    import tempfile
    from zoneinfo import ZoneInfo

    from lms.services import roster_export
    from lms.services.roster import (
        FILTER_STATUSES,
        RosterError,
        RosterFilters,
        check_cycle,
        roster_rows,
        roster_summary,
    )

    unknown = [s for s in statuses if s not in FILTER_STATUSES]
    if unknown:
        _fail(f"unknown status {', '.join(unknown)}; use one of {', '.join(FILTER_STATUSES)} (--status)")
    session = get_session()
    filters = RosterFilters(cycle_id=_find_cycle(ref).id, policy_id=policy, units=list(units),
                            statuses=list(statuses), as_of=as_of and as_of.date())
    try:
        cycle = check_cycle(session, filters)
    except RosterError as exc:
        _fail(f"{exc} ({'--policy' if 'policy' in str(exc) else '--cycle'})")
    if not out.parent.is_dir():
        _fail(f"folder {out.parent} does not exist (--out)")
    tz = current_app.config["TIMEZONE"]
    now = utcnow()
    today = local_date(now, tz)
    title = f"{cycle.name} roster"
    filters_text = roster_export.describe_filters(filters, cycle.name)
    # The PDF's head (counts per status and unit) and its size bound; CSV and XLSX stream any size.
    summary = roster_summary(session, filters, today=today, tz=tz) if fmt == "pdf" else None
    if summary is not None and (refusal := roster_export.pdf_refusal(
            sum(summary.counts.values()), current_app.config["ROSTER_PDF_MAX_ROWS"])):
        _fail(f"{refusal} (--format; ROSTER_PDF_MAX_ROWS sets the limit)")
    # Everything loaded so far lives until the command exits. Frozen, it is left out of the
    # garbage collector's passes, which otherwise rescan it again and again while tens of
    # thousands of rows are read and written (about 3% of a 50,000-row export's CPU time).
    gc.freeze()
    # Written beside the target and renamed into place once complete and audited, so a failure
    # leaves no partial file; mkstemp makes it readable by its owner only.
    fd, partial = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    try:
        if fmt == "csv":
            with os.fdopen(fd, "w", encoding="utf-8", newline="", buffering=1 << 20) as handle:
                count = roster_export.write_csv(roster_rows(session, filters, today=today, tz=tz), handle)
        elif fmt == "xlsx":
            with os.fdopen(fd, "wb") as handle:
                count = roster_export.write_xlsx(roster_rows(session, filters, today=today, tz=tz), handle,
                                                 title=title, filters_text=filters_text)
        else:
            with os.fdopen(fd, "wb") as handle:
                rows = list(roster_rows(session, filters, today=today, tz=tz))
                count = len(rows)
                handle.write(roster_export.render_pdf(
                    rows, title=title, filters_text=filters_text, generated_at=now.astimezone(ZoneInfo(tz)),
                    counts=summary.counts if summary else {}, unit_summary=summary.units if summary else [],
                    department=current_app.config["DEPARTMENT_NAME"]))
        record_event(session, "roster.export", at=now, target=f"cycle:{cycle.id}",
                     details={"filters": roster_export.filters_details(filters), "format": fmt, "rows": count,
                              "via": "cli", "out": str(out.resolve())})
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    # Into place only once its audit record is committed; removed if that fails.
    after_commit(os.replace, partial, out)
    on_rollback(Path(partial).unlink, missing_ok=True)
    if count == 0:
        # The file is still written (a script may expect the CSV's header), but said plainly.
        what = "the column headings only" if fmt == "csv" else "no member rows"
        after_commit(click.echo, f"No members match these filters: {out} holds {what}.")
    else:
        after_commit(click.echo, f"Wrote {count} roster row{'' if count == 1 else 's'} to {out}.")


@lms.command("worker")
@click.option("--threads", type=click.IntRange(1, 64), default=None,
              help="Worker threads (default JOBS_WORKER_THREADS).")
@click.option("--no-schedule", is_flag=True,
              help="Run jobs but leave the schedule to other workers (it runs once per slot either way).")
@click.option("--parent-pid", type=int, default=None, hidden=True)
@with_appcontext
def worker_command(threads: int | None, no_schedule: bool, parent_pid: int | None) -> None:
    """Run background jobs and the schedule until stopped (Ctrl+C finishes the running jobs)."""
    import logging

    from lms.jobs import run_worker, worker_name

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = current_app._get_current_object()
    threads = threads or int(app.config["JOBS_WORKER_THREADS"])
    broker = app.config.get("JOBS_URL") or "instance/jobs.sqlite3"
    click.echo(f"Worker {worker_name()}: {threads} thread(s), queue {app.config['JOBS_QUEUE_NAME']!r} "
               f"on {broker.split('@')[-1]}{'' if not no_schedule else ', no schedule'}.")
    run_worker(app, threads=threads, schedule=not no_schedule, parent_pid=parent_pid)


@lms.group("jobs")
def jobs_group() -> None:
    """Background jobs: list, retry, run."""


@jobs_group.command("list")
@click.option("--status", type=click.Choice(["pending", "running", "done", "failed"]), default="failed",
              show_default=True)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@with_appcontext
def jobs_list(status: str, limit: int) -> None:
    """Jobs in one status, latest first: id, kind, attempts, key and the last error."""
    from sqlalchemy import select

    from lms.models import Job

    session = get_session()
    rows = session.scalars(select(Job).where(Job.status == status).order_by(Job.id.desc()).limit(limit)).all()
    for job in rows:
        error = (job.last_error or "").splitlines()[-1][:200] if job.last_error else ""
        click.echo(f"{job.id}\t{job.kind}\t{job.attempts}/{job.max_attempts}\t{job.key}\t{error}")
    click.echo(f"{len(rows)} {status} job(s).", err=True)


@jobs_group.command("retry")
@click.argument("job_ids", nargs=-1, type=int, required=True)
@with_appcontext
def jobs_retry(job_ids: tuple[int, ...]) -> None:
    """Run failed jobs again (audited as job.retry)."""
    from lms.jobs import wake
    from lms.models import Job
    from lms.services.jobs import JobError, retry

    session = get_session()
    now = utcnow()
    for job_id in job_ids:
        job = session.get(Job, job_id)
        if job is None:
            _fail(f"no job {job_id}; nothing was retried")
        try:
            retry(session, job, now=now, actor_id=None, ip="cli")
        except JobError as exc:
            _fail(f"{exc} Nothing was retried.")
    after_commit(wake, current_app._get_current_object())
    click.echo(f"Queued {len(job_ids)} job(s) again.")


@jobs_group.command("run")
@click.option("--limit", type=click.IntRange(1), default=None, help="Stop after this many jobs.")
@with_appcontext
def jobs_run(limit: int | None) -> None:
    """Run the due jobs now, in this process, and exit (no worker needed)."""
    from lms.jobs import run_pending

    summary = run_pending(current_app._get_current_object(), limit=limit)
    click.echo(f"{len(summary.done)} done, {len(summary.retrying)} to retry, {len(summary.failed)} failed.")


@jobs_group.command("schedule")
@click.argument("name")
@with_appcontext
def jobs_schedule(name: str) -> None:
    """Queue one run of a periodic task now (e.g. effective-date-switch, reminders)."""
    from lms.jobs import SCHEDULE, enqueue_periodic, wake

    names = [p.name for p in SCHEDULE]
    if name not in names:
        _fail(f"no periodic task {name!r}; the schedule has {', '.join(names)}")
    enqueue_periodic(current_app._get_current_object(), name, utcnow())
    wake(current_app._get_current_object())
    click.echo(f"Queued {name}.")


@lms.command("backup")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The backup file to write (replaced if it exists; readable by its owner only).")
@with_appcontext
def backup_command(out: Path) -> None:
    """Copy the database consistently while the app runs (SQLite's online backup, or a pg_dump
    custom archive); prints the chain head inside the copy."""
    from lms.backup import BackupError, backup
    from lms.db import get_database

    try:
        head = backup(get_database().engine, out)
    except BackupError as exc:
        _fail(str(exc))
    session = get_session()
    record_event(session, "database.backup", at=utcnow(), details={"file": out.name, "via": "cli"})
    click.echo(f"Backed up to {out}.")
    click.echo(f"Chain head in the backup: {head}")


@lms.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already holds members or records.")
@with_appcontext
def restore_command(file: Path, force: bool) -> None:
    """Bring a backup back into the database DATABASE_URL names; stop the app servers and workers
    first. Refuses a database holding members or records without --force."""
    from lms.backup import BackupError, restore
    from lms.db import get_database

    try:
        head = restore(get_database().engine, file, force=force)
    except BackupError as exc:
        _fail(str(exc))
    # Recorded in the restored database: the restore is its latest change.
    session = get_session()
    record_event(session, "database.restore", at=utcnow(), details={"file": file.name, "via": "cli",
                                                                    "forced": force, "chain_head": str(head)})
    click.echo(f"Restored {file}.")
    click.echo(f"Chain head: {head}")
    click.echo("Run 'flask --app app lms verify' to check the records, and 'flask --app app lms init' "
               "if this release is newer than the backup.")
