"""The training coordinator's pages: cycles, opening one, the live roster with its exports, a
member's progress in a cycle, and exemptions. Every roster read, export and member view is audited.
Administrators reach these pages too."""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date
from itertools import islice
from math import ceil
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased, joinedload

from lms.auth import role_required, signed_out_locked
from lms.db import get_session
from lms.jobs import wake
from lms.forms import ActionForm
from lms.forms.coordinator import AttemptGrantForm, CycleForm, ExemptionForm, RosterForm, grant_prefix
from lms.models import (
    Assignment,
    Cycle,
    Exemption,
    LessonProgress,
    Member,
    Policy,
    PolicyVersion,
)
from lms.services import export_jobs
from lms.services import quiz as quiz_service
from lms.services.accounts import SignInRules, count_reauthentication_failure
from lms.services.attempt_grants import GrantError, attempt_grants, grant_attempts
from lms.services.audit import record_event
from lms.services.clock import local_iso
from lms.services.charts import completion_by_unit_svg, percent_complete
from lms.services.cycles import (
    CycleError,
    ExemptionError,
    audience_size,
    create_cycle,
    current_exemption,
    grant_exemption,
    lift_exemption,
    record_cycle_opened,
)
from lms.services.overview import cycle_counts
from lms.services.progress import STATUS_LABELS, STATUSES, progress_for
from lms.services.roster import (
    SORTS,
    RosterFilters,
    member_values,
    roster_rows,
    roster_summary,
)
from lms.services.roster_export import describe_filters, filters_details, render_pdf, write_csv, write_xlsx
from lms.views.export_pages import export_download, export_status
from lms.web import attachment, client_ip, commit, request_now, today

bp = Blueprint("coordinator", __name__, url_prefix="/coordinator")
coordinator_required = role_required("coordinator", "admin")

#: Roster rows per page.
PAGE_SIZE = 50
#: Rows per chunk of a streamed CSV: large enough to keep the number of writes small, small
#: enough that memory holds one chunk rather than the whole roster.
CSV_CHUNK_ROWS = 1000
#: The PDF lays out every row, at about 5 ms a row (2,000 rows took 9 s here), inside the request;
#: a larger view is refused with a pointer to CSV/XLSX or a narrower filter, so a PDF stays well
#: within a gunicorn worker's default 30 s timeout.
PDF_MAX_ROWS = 2000
#: Roster columns a coordinator can sort by, with their header labels, in table order.
SORT_LABELS = {"last_name": "Name", "badge": "Badge", "rank": "Rank", "unit": "Unit", "shift": "Shift",
               "supervisor_badge": "Supervisor", "status": "Status", "quiz_best_score": "Quiz best",
               "acknowledged_at": "Signed", "due_date": "Due", "first_name": "First name"}
#: Which input of the cycle form create_cycle's CycleError.field blames.
CYCLE_FIELDS = {"year": "year", "due_date": "due_date", "policy": "policies", "grace_days": "grace_days"}
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "pdf": "application/pdf"}


def _audit(action: str, target: str | None = None, **details) -> None:
    """Record what the signed-in coordinator read or did, from where, now."""
    record_event(get_session(), action, at=request_now(), actor_id=current_user.id, target=target,
                 ip=client_ip(), details=details or None)


def _tz() -> str:
    return current_app.config["TIMEZONE"]


# --- loads ---------------------------------------------------------------------------------------
# Small reads for choices and 404s; the rules and aggregates they feed live in lms.services.

def _cycle_or_404(year: int) -> Cycle:
    cycle = get_session().scalar(select(Cycle).where(Cycle.year == year))
    if cycle is None:
        abort(404)
    return cycle


def _distinct(column) -> list[str]:
    """The distinct non-empty values of a member column, sorted."""
    return member_values(get_session(), column)


def _unknown_supervisors(badges: list[str]) -> list[str]:
    """Those of ``badges`` that belong to no member who supervises someone."""
    if not badges:
        return []
    supervising = select(Member.supervisor_id).where(Member.supervisor_id.is_not(None))
    known = set(get_session().scalars(select(Member.badge).where(Member.badge.in_(badges),
                                                                 Member.id.in_(supervising))))
    return [b for b in badges if b not in known]


def _member_in_cycle_or_404(cycle: Cycle, member_id: int) -> Member:
    """The member if the cycle ever assigned them anything; 404 otherwise."""
    db = get_session()
    assigned = db.scalar(select(Assignment.id).where(Assignment.cycle_id == cycle.id,
                                                     Assignment.member_id == member_id).limit(1))
    if assigned is None:
        abort(404)
    return db.get(Member, member_id)


def _exemptions(cycle: Cycle, member_id: int | None = None) -> list[tuple[Exemption, Member | None]]:
    """A cycle's exemptions (or one member's), current first, newest first, each with who lifted it."""
    lifter = aliased(Member)
    query = (select(Exemption, lifter).outerjoin(lifter, lifter.id == Exemption.lifted_by_id)
             .where(Exemption.cycle_id == cycle.id)
             .options(joinedload(Exemption.member), joinedload(Exemption.granted_by))
             .order_by(Exemption.lifted_at.is_not(None), Exemption.granted_at.desc(), Exemption.id.desc()))
    if member_id is not None:
        query = query.where(Exemption.member_id == member_id)
    return [(exemption, lifted_by) for exemption, lifted_by in get_session().execute(query)]


# --- cycles --------------------------------------------------------------------------------------

#: Pages of other coordinator blueprints linked from each cycle, when they are registered.
CYCLE_TOOLS = (("Reminders", "coordinator_tools.reminders"), ("Item analysis", "coordinator_tools.items"))


@bp.get("/")
@coordinator_required
def home():
    """Every cycle with how many of its assignments are signed, and the way to open one."""
    tools = [(label, endpoint) for label, endpoint in CYCLE_TOOLS if endpoint in current_app.view_functions]
    return render_template("coordinator/home.html", cycles=cycle_counts(get_session()), tools=tools)


def _cycle_form() -> CycleForm:
    """The cycle form with the loaded policies and the units and ranks on the personnel roster."""
    db = get_session()
    form = CycleForm()
    form.policies.choices = [(p.id, f"{p.id} {p.title}") for p in db.scalars(select(Policy).order_by(Policy.id))]
    form.units.choices = [(u, u) for u in _distinct(Member.unit)]
    form.ranks.choices = [(r, r) for r in _distinct(Member.rank)]
    return form


@bp.route("/cycles/new", methods=["GET", "POST"])
@coordinator_required
def new_cycle():
    """Open a training cycle: year, policies, audience, due date and grace days."""
    form = _cycle_form()
    if request.method == "GET":
        # Suggest the first year without a cycle, due at its end, for every policy.
        taken = set(get_session().scalars(select(Cycle.year)))
        year = next(y for y in range(today().year, today().year + 100) if y not in taken)
        form.year.data, form.due_date.data = year, date(year, 12, 31)
        form.policies.data = [value for value, _ in form.policies.choices]
    elif form.validate_on_submit():
        db = get_session()
        try:
            cycle = create_cycle(db, year=form.year.data, due_date=form.due_date.data, today=today(),
                                 now=request_now(), policy_ids=form.policies.data, units=form.units.data,
                                 ranks=form.ranks.data, grace_days=form.grace_days.data,
                                 created_by_id=current_user.id)
        except CycleError as exc:
            db.rollback()
            target = getattr(form, CYCLE_FIELDS.get(exc.field, ""), None)
            (target.errors if target is not None else form.form_errors).append(str(exc))
        except IntegrityError:  # another coordinator opened this year a moment ago
            db.rollback()
            form.year.errors.append(f"a cycle for {form.year.data} already exists")
        else:
            members = audience_size(db, cycle.id)
            record_cycle_opened(db, cycle, members=members, actor_id=current_user.id, ip=client_ip(),
                                now=request_now(), via="web")
            commit()
            flash(f"Opened the {cycle.name} cycle: {members} member{'s' if members != 1 else ''} assigned, "
                  f"due {cycle.due_date.isoformat()}.", "success")
            return redirect(url_for(".roster", year=cycle.year), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("coordinator/new_cycle.html", form=form), status


# --- the roster ----------------------------------------------------------------------------------

def _roster_form(cycle: Cycle) -> RosterForm:
    """The roster's filter form read from the query string, with choices from the database."""
    form = RosterForm(request.args)
    form.policy.choices = [("", "All policies")] + [
        (v.policy_id, f"{v.policy_id} (effective {v.effective.isoformat()})") for v in cycle.policy_versions]
    form.status.choices = [(s, STATUS_LABELS[s]) for s in STATUSES]
    form.unit.choices = [(u, u) for u in _distinct(Member.unit)]
    form.shift.choices = [(s, s) for s in _distinct(Member.shift)]
    form.rank.choices = [(r, r) for r in _distinct(Member.rank)]
    form.sort.choices = [(key, SORT_LABELS[key]) for key in SORT_LABELS if key in SORTS]
    return form


def _roster_filters(cycle: Cycle, form: RosterForm) -> RosterFilters | None:
    """The filters the form asks for, or None with every problem beside its field."""
    valid = form.validate()
    supervisors = [badge for badge in dict.fromkeys(re.split(r"[\s,;]+", form.supervisor.data or "")) if badge]
    unknown = _unknown_supervisors(supervisors)
    if unknown:
        form.supervisor.errors.append(f"No supervisor has badge {', '.join(unknown)}; check the number.")
    if not form.as_of.errors and form.as_of.data and form.as_of.data > today():
        form.as_of.errors.append(f"Choose a date up to today ({today().isoformat()}); "
                                 "the roster cannot show days still to come.")
    if not valid or any(f.errors for f in form):
        return None
    return RosterFilters(year=cycle.year, policy_id=form.policy.data or None, units=form.unit.data or [],
                         shifts=form.shift.data or [], ranks=form.rank.data or [],
                         supervisor_badges=supervisors, statuses=form.status.data or [],
                         search=(form.q.data or "").strip() or None, as_of=form.as_of.data)


#: The filters folded away under "Filter by status, unit…" unless one of them is in use.
FOLDED_FILTERS = ("status", "unit", "shift", "rank", "supervisor")


def _folded_in_use(form: RosterForm) -> bool:
    """Whether any of the folded-away filters narrows the roster."""
    return any(getattr(form, name).data for name in FOLDED_FILTERS)


def _query_args(**changes) -> dict[str, list[str]]:
    """The current query string as a dict of lists, with ``changes`` applied (None removes a key)."""
    args = {key: request.args.getlist(key) for key in request.args}
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value if isinstance(value, list) else [str(value)]
    return args


@dataclass
class Pages:
    """Where a page of the roster sits among all of them."""

    number: int
    count: int
    total_rows: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * PAGE_SIZE

    @property
    def first_row(self) -> int:
        return self.offset + 1 if self.total_rows else 0

    @property
    def last_row(self) -> int:
        return min(self.offset + PAGE_SIZE, self.total_rows)


@bp.get("/cycles/<int:year>/roster")
@coordinator_required
def roster(year: int):
    """The live roster: filters, counts per status, completion by unit, and a page of rows."""
    cycle = _cycle_or_404(year)
    form = _roster_form(cycle)
    filters = _roster_filters(cycle, form)
    if filters is None:
        return render_template("coordinator/roster.html", cycle=cycle, form=form, filters=None,
                               folded_in_use=_folded_in_use(form), folded_open=True), 400
    db, tz = get_session(), _tz()
    sort, descending = form.sort.data, form.dir.data == "desc"
    # Counts and the unit chart from one pass over the roster: at 50,000 members each pass is
    # most of the page's time.
    head = roster_summary(db, filters, today=today(), tz=tz)
    counts = head.counts
    total = sum(counts.values())
    page_count = max(1, ceil(total / PAGE_SIZE))
    pages = Pages(number=min(form.page.data or 1, page_count), count=page_count, total_rows=total)
    rows = list(roster_rows(db, filters, today=today(), tz=tz, sort=sort, descending=descending,
                            limit=PAGE_SIZE, offset=pages.offset))
    summary = head.units
    _audit("roster.view", f"cycle:{cycle.year}", filters=filters_details(filters), sort=sort,
           direction=form.dir.data, page=pages.number, rows=total)
    commit()
    return render_template(
        "coordinator/roster.html", cycle=cycle, form=form, filters=filters, rows=rows, counts=counts,
        total=total, pages=pages, sort=sort, descending=descending, query_args=_query_args,
        summary=[(unit, n, done, percent_complete(n, done)) for unit, n, done in summary],
        chart=completion_by_unit_svg(summary), filters_text=describe_filters(filters),
        sort_labels=SORT_LABELS, pdf_max_rows=PDF_MAX_ROWS,
        printed_at=local_iso(request_now(), tz)[:16].replace("T", " "),
        folded_in_use=_folded_in_use(form), folded_open=_folded_in_use(form),
        multiple_policies=len(cycle.policy_versions) > 1 and not filters.policy_id)


def _csv_chunks(rows):
    """The roster CSV in chunks of CSV_CHUNK_ROWS rows, written by roster_export.write_csv, so a
    large roster streams rather than sitting in memory whole."""
    header = io.StringIO()
    write_csv([], header)
    yield header.getvalue()
    rows = iter(rows)
    while chunk := list(islice(rows, CSV_CHUNK_ROWS)):
        out = io.StringIO()
        write_csv(chunk, out)
        # write_csv starts every file with the header; this chunk continues the first one.
        yield out.getvalue()[len(header.getvalue()):]


@bp.get("/cycles/<int:year>/roster.<any(csv, xlsx, pdf):kind>")
@coordinator_required
def roster_export(year: int, kind: str):
    """The current view of the roster (every page of it) as CSV, XLSX or PDF."""
    cycle = _cycle_or_404(year)
    form = _roster_form(cycle)
    filters = _roster_filters(cycle, form)
    if filters is None:
        problems = "; ".join(e for f in form for e in f.errors)
        abort(400, description=f"The roster filters are not right: {problems}")
    db, tz = get_session(), _tz()
    sort, descending = form.sort.data, form.dir.data == "desc"
    head = roster_summary(db, filters, today=today(), tz=tz)
    counts = head.counts
    total = sum(counts.values())
    if kind == "pdf" and total > PDF_MAX_ROWS:
        abort(400, description=f"The PDF lists every row, and this view has {total:,}; narrow it to "
                               f"{PDF_MAX_ROWS:,} rows or fewer (by unit or status, say), or export CSV or XLSX.")
    name = f"roster-{cycle.year}-{(filters.as_of or today()).isoformat()}.{kind}"
    headers = {"Content-Disposition": attachment(name)}
    title = f"{cycle.name} roster"
    filters_text = describe_filters(filters)
    limit = {"xlsx": current_app.config["EXPORT_JOB_ROWS"], "pdf": current_app.config["EXPORT_JOB_PDF_ROWS"]}
    if kind in limit and total > limit[kind]:
        # A large XLSX or PDF: built by the worker, followed on its own page, downloaded when ready.
        job_id = export_jobs.queue_roster(
            db, filters, fmt=kind, sort=sort, descending=descending, title=title, filters_text=filters_text,
            department=current_app.config["DEPARTMENT_NAME"], now=request_now(), today=today(),
            requested_by_id=current_user.id, ip=client_ip(),
            audit_details={"rows": total, "filters": filters_details(filters)})
        commit()
        wake(current_app._get_current_object())
        return redirect(url_for(".export_job", job_id=job_id), 303)

    def rows():
        return roster_rows(db, filters, today=today(), tz=tz, sort=sort, descending=descending)

    if kind == "csv":
        # The event is committed before the first byte goes out, so no download goes unrecorded.
        _audit("roster.export", f"cycle:{cycle.year}", format=kind, rows=total, filters=filters_details(filters),
               via="web")
        commit()
        return Response(stream_with_context(_csv_chunks(rows())), mimetype="text/csv",
                        headers=headers)
    if kind == "xlsx":
        out = io.BytesIO()
        write_xlsx(rows(), out, title=title, filters_text=filters_text)
        body = out.getvalue()
    else:
        body = render_pdf(rows(), title=title, filters_text=filters_text,
                          generated_at=request_now().astimezone(ZoneInfo(tz)), counts=counts,
                          unit_summary=head.units,
                          department=current_app.config["DEPARTMENT_NAME"])
    _audit("roster.export", f"cycle:{cycle.year}", format=kind, rows=total, bytes=len(body),
           filters=filters_details(filters), via="web")
    commit()
    return Response(body, mimetype=EXPORT_TYPES[kind], headers=headers)


@bp.get("/exports/<int:job_id>")
@coordinator_required
def export_job(job_id: int):
    """A queued roster export: its progress, then its download."""
    return export_status(job_id, "roster", download_endpoint="coordinator.export_job_download",
                         back=url_for(".home"))


@bp.get("/exports/<int:job_id>/download")
@coordinator_required
def export_job_download(job_id: int):
    """The finished roster export (audited as roster.export.download)."""
    return export_download(job_id, "roster", "roster.export.download")


# --- a member in a cycle -------------------------------------------------------------------------

def _member_page(cycle: Cycle, member: Member, form: ExemptionForm, status: int = 200,
                 grant_form: AttemptGrantForm | None = None):
    """Render a member's progress in a cycle: each policy's lessons, attempts, the attempts granted,
    signature, and the exemptions granted and lifted. ``grant_form`` is a submitted grant form to
    show with its errors in place of that assignment's blank one."""
    db, tz = get_session(), _tz()
    assignments = list(db.scalars(
        select(Assignment).where(Assignment.cycle_id == cycle.id, Assignment.member_id == member.id)
        .options(joinedload(Assignment.policy_version).joinedload(PolicyVersion.policy))
        .order_by(Assignment.superseded_at.is_not(None), Assignment.policy_version_id)))
    grants = attempt_grants(db, [a.id for a in assignments])
    items = []
    for assignment in assignments:
        read = dict(db.execute(select(LessonProgress.lesson_id, LessonProgress.completed_at)
                               .where(LessonProgress.assignment_id == assignment.id)).all())
        prefix = grant_prefix(assignment.id)
        items.append({"progress": progress_for(db, assignment, today=today(), tz=tz), "read": read,
                      "attempts": quiz_service.submitted_attempts(db, assignment.id),
                      "grants": grants[assignment.id],
                      "grant_form": grant_form if grant_form is not None and grant_form._prefix == prefix + "-"
                      else AttemptGrantForm(formdata=None, prefix=prefix)})
    return render_template("coordinator/member.html", cycle=cycle, member=member, items=items,
                           exemption=current_exemption(db, cycle.id, member.id),
                           exemptions=_exemptions(cycle, member.id), form=form,
                           can_grant=member.id != current_user.id, tz=ZoneInfo(tz)), status


@bp.get("/cycles/<int:year>/members/<int:member_id>")
@coordinator_required
def member_progress(year: int, member_id: int):
    """One member's progress in a cycle, with their exemption and the form to grant or lift one."""
    cycle = _cycle_or_404(year)
    member = _member_in_cycle_or_404(cycle, member_id)
    _audit("roster.view_member", f"member:{member.id}", cycle=cycle.year, badge=member.badge)
    commit()
    return _member_page(cycle, member, ExemptionForm(formdata=None))


@bp.post("/cycles/<int:year>/members/<int:member_id>/exemption")
@coordinator_required
def grant(year: int, member_id: int):
    """Exempt a member from a cycle, with the reason."""
    cycle = _cycle_or_404(year)
    member = _member_in_cycle_or_404(cycle, member_id)
    form = ExemptionForm()
    if form.validate_on_submit():
        db = get_session()
        try:
            exemption = grant_exemption(db, cycle=cycle, member=member, reason=form.reason.data,
                                        granted_by_id=current_user.id, now=request_now())
        except ExemptionError as exc:
            db.rollback()
            if current_exemption(db, cycle.id, member.id) is None:
                form.reason.errors.append(str(exc))
            else:  # granted already (another tab, another coordinator): show that exemption
                flash(str(exc), "error")
                return redirect(url_for(".member_progress", year=cycle.year, member_id=member.id), 303)
        else:
            _audit("exemption.grant", f"exemption:{exemption.id}", cycle=cycle.year, member_id=member.id,
                   badge=member.badge, reason=exemption.reason)
            commit()
            flash(f"{member.full_name} is exempt from the {cycle.name} cycle.", "success")
            return redirect(url_for(".member_progress", year=cycle.year, member_id=member.id), 303)
    return _member_page(cycle, member, form, 400)


@bp.post("/cycles/<int:year>/members/<int:member_id>/assignments/<int:assignment_id>/attempts")
@coordinator_required
def grant_quiz_attempts(year: int, member_id: int, assignment_id: int):
    """Grant a member extra quiz attempts, with the reason, confirmed by the coordinator's password."""
    cycle = _cycle_or_404(year)
    member = _member_in_cycle_or_404(cycle, member_id)
    db = get_session()
    assignment = db.get(Assignment, assignment_id)
    if assignment is None or assignment.cycle_id != cycle.id or assignment.member_id != member.id:
        abort(404)
    form = AttemptGrantForm(prefix=grant_prefix(assignment.id))
    if form.validate_on_submit():
        try:
            grant_attempts(db, assignment=assignment, granted_by=current_user._get_current_object(),
                           password=form.password.data, attempts=form.attempts.data, reason=form.reason.data,
                           now=request_now(), ip=client_ip())
        except GrantError as exc:
            db.rollback()
            for field, message in exc.problems.items():
                (getattr(form, field).errors if field else form.form_errors).append(message)
            locked = "password" in exc.problems and count_reauthentication_failure(
                db, current_user._get_current_object(), action="quiz.grant_attempts", now=request_now(),
                ip=client_ip(), rules=SignInRules.from_config(current_app.config))
            commit()
            if locked:
                return signed_out_locked()
        else:
            commit()
            flash(f"Granted {member.full_name} {form.attempts.data} more quiz "
                  f"attempt{'s' if form.attempts.data != 1 else ''}.", "success")
            return redirect(url_for(".member_progress", year=cycle.year, member_id=member.id), 303)
    return _member_page(cycle, member, ExemptionForm(formdata=None), 400, grant_form=form)


@bp.post("/cycles/<int:year>/exemptions/<int:exemption_id>/lift")
@coordinator_required
def lift(year: int, exemption_id: int):
    """Lift an exemption: the member owes the cycle's training again; the record of it stays."""
    cycle = _cycle_or_404(year)
    db = get_session()
    exemption = db.get(Exemption, exemption_id)
    if exemption is None or exemption.cycle_id != cycle.id:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    member = exemption.member
    try:
        lift_exemption(db, exemption, lifted_by_id=current_user.id, now=request_now())
    except ExemptionError as exc:
        db.rollback()
        flash(str(exc), "error")
    else:
        _audit("exemption.lift", f"exemption:{exemption.id}", cycle=cycle.year, member_id=member.id,
               badge=member.badge)
        commit()
        flash(f"Lifted {member.full_name}'s exemption from the {cycle.name} cycle.", "success")
    if request.form.get("back") == "exemptions":
        return redirect(url_for(".exemptions", year=cycle.year), 303)
    return redirect(url_for(".member_progress", year=cycle.year, member_id=member.id), 303)


@bp.get("/cycles/<int:year>/exemptions")
@coordinator_required
def exemptions(year: int):
    """Every exemption in a cycle, current and lifted, with who granted and lifted it, when and why."""
    cycle = _cycle_or_404(year)
    _audit("exemption.list", f"cycle:{cycle.year}")
    commit()
    return render_template("coordinator/exemptions.html", cycle=cycle, exemptions=_exemptions(cycle),
                           tz=ZoneInfo(_tz()))
