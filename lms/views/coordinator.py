"""The training coordinator's pages: cycles, opening one, the live roster with its exports, a
member's progress in a cycle, and exemptions. Every roster read, export and member view is audited.
Administrators reach these pages too."""
from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass
from datetime import date
from itertools import islice
from math import ceil
from urllib.parse import parse_qsl
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
from werkzeug.datastructures import MultiDict

from lms.auth import role_required, signed_out_locked
from lms.db import get_session
from lms.forms import ActionForm
from lms.forms.coordinator import (
    AttemptGrantForm,
    CycleEditForm,
    CycleForm,
    ExemptionForm,
    RosterActionForm,
    RosterForm,
    grant_prefix,
)
from lms.jobs import wake
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
from lms.services.charts import completion_by_unit_svg, percent_complete
from lms.services.clock import date_words
from lms.services.cycles import (
    CycleError,
    ExemptionError,
    audience_size,
    close_cycle,
    create_cycle,
    current_exemption,
    cycle_started,
    delete_cycle,
    edit_cycle,
    file_stem,
    grant_exemption,
    lift_exemption,
    plan_cycle,
    plan_edit,
    record_cycle_opened,
)
from lms.services.links import public_url
from lms.services.overview import cycle_counts
from lms.services.progress import STATUS_LABELS, STATUSES, progress_for
from lms.services.roster import (
    NOT_DONE,
    NOT_DONE_STATUSES,
    SORTS,
    RosterFilters,
    RosterSummary,
    member_values,
    roster_rows,
    roster_summary,
)
from lms.services.roster_actions import (
    ACTIONS,
    MAX_TICKED_ROWS,
    ActionError,
    ActionPlan,
    ActionResult,
    apply_action,
    plan_action,
)
from lms.services.roster_export import (
    describe_filters,
    filters_details,
    nothing_matches,
    pdf_refusal,
    render_pdf,
    write_csv,
    write_xlsx,
)
from lms.services.validators import ascii_int
from lms.views.export_pages import export_download, export_status
from lms.web import after_commit, attachment, client_ip, cycle_or_404, keep_on_error, request_now, today

bp = Blueprint("coordinator", __name__, url_prefix="/coordinator")
coordinator_required = role_required("coordinator", "admin")

#: Roster rows per page.
PAGE_SIZE = 50
#: Rows per chunk of a streamed CSV: large enough to keep the number of writes small, small
#: enough that memory holds one chunk rather than the whole roster.
CSV_CHUNK_ROWS = 1000
#: Roster columns a coordinator can sort by, with their header labels, in table order.
SORT_LABELS = {"last_name": "Name", "badge": "Badge", "rank": "Rank", "unit": "Unit", "shift": "Shift",
               "supervisor_badge": "Supervisor", "status": "Status", "quiz_best_score": "Quiz best",
               "acknowledged_at": "Signed", "due_date": "Due", "first_name": "First name"}
#: Which input of the cycle form create_cycle's CycleError.field blames.
CYCLE_FIELDS = {"year": "year", "name": "name", "due_date": "due_date", "policy": "policies",
                "grace_days": "grace_days", "units": "units", "ranks": "ranks", "shifts": "shifts"}
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "pdf": "application/pdf"}


def _audit(event: str, target: str | None = None, /, **details) -> None:
    """Record what the signed-in coordinator read or did, from where, now."""
    record_event(get_session(), event, at=request_now(), actor_id=current_user.id, target=target,
                 ip=client_ip(), details=details or None)


def _tz() -> str:
    return current_app.config["TIMEZONE"]


# --- loads ---------------------------------------------------------------------------------------
# Small reads for choices and 404s; the rules and aggregates they feed live in lms.services.

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


def _audience_choices(form) -> None:
    """The units, ranks and shifts on the personnel roster, as a cycle form's audience choices."""
    form.units.choices = [(u, u) for u in _distinct(Member.unit)]
    form.ranks.choices = [(r, r) for r in _distinct(Member.rank)]
    form.shifts.choices = [(s, s) for s in _distinct(Member.shift)]


def _cycle_form() -> CycleForm:
    """The cycle form with the loaded policies and the units, ranks and shifts on the personnel roster."""
    db = get_session()
    form = CycleForm()
    form.policies.choices = [(p.id, f"{p.id} {p.title}") for p in db.scalars(select(Policy).order_by(Policy.id))]
    _audience_choices(form)
    return form


def _blame(form, exc: CycleError) -> None:
    """Put a service's CycleError beside the field it names (or at the top of the form)."""
    target = getattr(form, CYCLE_FIELDS.get(exc.field or "", ""), None)
    (target.errors if target is not None else form.form_errors).append(str(exc))


@bp.route("/cycles/new", methods=["GET", "POST"])
@coordinator_required
def new_cycle():
    """Open a training cycle: year, name, policies, audience, due date and grace days. The first
    post previews how many members the cycle assigns; the coordinator then confirms."""
    form = _cycle_form()
    if request.method == "GET":
        # Suggest the first year without a cycle, due at its end, for every policy.
        taken = set(get_session().scalars(select(Cycle.year)))
        year = next(y for y in range(today().year, today().year + 100) if y not in taken)
        form.year.data, form.due_date.data = year, date(year, 12, 31)
        form.policies.data = [value for value, _ in form.policies.choices]
    elif form.validate_on_submit():
        db = get_session()
        values = dict(year=form.year.data, name=form.name.data, due_date=form.due_date.data, today=today(),
                      policy_ids=form.policies.data, units=form.units.data, ranks=form.ranks.data,
                      shifts=form.shifts.data, grace_days=form.grace_days.data)
        try:
            if "confirm" not in request.form:
                plan = plan_cycle(db, **values)
                return render_template("coordinator/new_cycle.html", form=form, plan=plan)
            cycle = create_cycle(db, now=request_now(), created_by_id=current_user.id, **values)
        except CycleError as exc:
            db.rollback()
            _blame(form, exc)
        except IntegrityError:  # another coordinator took this name a moment ago
            db.rollback()
            form.name.errors.append("another cycle has just been given this name; choose another")
        else:
            members = audience_size(db, cycle.id)
            record_cycle_opened(db, cycle, members=members, actor_id=current_user.id, ip=client_ip(),
                                now=request_now(), via="web")
            flash(f"Opened the {cycle.name} cycle: {members} member{'s' if members != 1 else ''} assigned, "
                  f"due {date_words(cycle.due_date)}.", "success")
            return redirect(url_for(".roster", cycle_id=cycle.id), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("coordinator/new_cycle.html", form=form, plan=None), status


@bp.route("/cycles/<int:cycle_id>/edit", methods=["GET", "POST"])
@coordinator_required
def edit(cycle_id: int):
    """Change a cycle's name, due date, grace period and audience. The first post previews what
    changes (who joins, whose untouched assignments go, who keeps theirs); the coordinator confirms."""
    cycle = cycle_or_404(cycle_id)
    if cycle.closed_at is not None:
        flash(f"The {cycle.name} cycle is closed; a closed cycle is not edited.", "error")
        return redirect(url_for(".roster", cycle_id=cycle.id), 303)
    form = CycleEditForm()
    _audience_choices(form)
    if request.method == "GET":
        form.name.data, form.due_date.data, form.grace_days.data = cycle.name, cycle.due_date, cycle.grace_days
        form.units.data, form.ranks.data, form.shifts.data = (
            cycle.audience.get("units") or [], cycle.audience.get("ranks") or [], cycle.audience.get("shifts") or [])
    elif form.validate_on_submit():
        db = get_session()
        values = dict(name=form.name.data, due_date=form.due_date.data, grace_days=form.grace_days.data,
                      units=form.units.data, ranks=form.ranks.data, shifts=form.shifts.data, today=today())
        try:
            if "confirm" not in request.form:
                change = plan_edit(db, cycle, **values)
                return render_template("coordinator/edit_cycle.html", cycle=cycle, form=form, change=change)
            change = edit_cycle(db, cycle, now=request_now(), actor_id=current_user.id, ip=client_ip(),
                                via="web", **values)
        except CycleError as exc:
            db.rollback()
            _blame(form, exc)
        except IntegrityError:
            db.rollback()
            form.name.errors.append("another cycle has just been given this name; choose another")
        else:
            flash(f"Saved the {cycle.name} cycle: {change.added} member{'s' if change.added != 1 else ''} "
                  f"added, {change.removed} removed.", "success")
            return redirect(url_for(".roster", cycle_id=cycle.id), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("coordinator/edit_cycle.html", cycle=cycle, form=form, change=None), status


@bp.route("/cycles/<int:cycle_id>/close", methods=["GET", "POST"])
@coordinator_required
def close(cycle_id: int):
    """Close a cycle (a confirmation page, then the post): no signatures after it; it stays readable
    and in the rosters."""
    cycle = cycle_or_404(cycle_id)
    form = ActionForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        db = get_session()
        try:
            close_cycle(db, cycle, now=request_now(), actor_id=current_user.id, ip=client_ip(), via="web")
        except CycleError as exc:
            db.rollback()
            flash(str(exc), "error")
        else:
            flash(f"Closed the {cycle.name} cycle. It takes no more signatures; its roster stays.", "success")
        return redirect(url_for(".roster", cycle_id=cycle.id), 303)
    return render_template("coordinator/close_cycle.html", cycle=cycle, form=form,
                           members=audience_size(get_session(), cycle.id))


@bp.route("/cycles/<int:cycle_id>/delete", methods=["GET", "POST"])
@coordinator_required
def delete(cycle_id: int):
    """Delete a cycle nobody has started (a confirmation page, then the post); otherwise say why
    not and offer to close it."""
    cycle = cycle_or_404(cycle_id)
    db = get_session()
    form = ActionForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        name = cycle.name
        try:
            delete_cycle(db, cycle, now=request_now(), actor_id=current_user.id, ip=client_ip(), via="web")
        except CycleError as exc:
            db.rollback()
            flash(str(exc), "error")
            return redirect(url_for(".delete", cycle_id=cycle_id), 303)
        flash(f"Deleted the {name} cycle.", "success")
        return redirect(url_for(".home"), 303)
    return render_template("coordinator/delete_cycle.html", cycle=cycle, form=form,
                           started=cycle_started(db, cycle), members=audience_size(db, cycle.id))


# --- the roster ----------------------------------------------------------------------------------

def _roster_form(cycle: Cycle, args=None) -> RosterForm:
    """The roster's filter form read from the query string (or ``args``), with choices from the
    database."""
    form = RosterForm(request.args if args is None else args)
    form.policy.choices = [("", "All policies")] + [
        (v.policy_id, f"{v.policy_id} (effective {date_words(v.effective)})") for v in cycle.policy_versions]
    # "Not done" first: the filter a coordinator chasing people reaches for.
    form.status.choices = [(NOT_DONE, "Not done (anything short of complete, late or exempt)")] + [
        (s, STATUS_LABELS[s]) for s in STATUSES]
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
        form.as_of.errors.append(f"Choose a date up to today ({date_words(today())}); "
                                 "the roster cannot show days still to come.")
    if not valid or any(f.errors for f in form):
        return None
    return RosterFilters(cycle_id=cycle.id, policy_id=form.policy.data or None, units=form.unit.data or [],
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


@bp.get("/cycles/<int:cycle_id>/roster")
@coordinator_required
def roster(cycle_id: int):
    """The live roster: filters, counts per status, completion by unit, and a page of rows."""
    cycle = cycle_or_404(cycle_id)
    form = _roster_form(cycle)
    filters = _roster_filters(cycle, form)
    if filters is None:
        return render_template("coordinator/roster.html", cycle=cycle, form=form, filters=None,
                               folded_in_use=_folded_in_use(form), folded_open=True), 400
    db, tz = get_session(), _tz()
    sort, descending = form.sort.data, form.dir.data == "desc"
    # Counts and the unit chart from one pass over the roster: at 50,000 members each pass is
    # most of the page's time.
    head = _roster_head(db, filters, tz)
    counts = head.counts
    total = sum(counts.values())
    page_count = max(1, ceil(total / PAGE_SIZE))
    pages = Pages(number=min(form.page.data or 1, page_count), count=page_count, total_rows=total)
    rows = list(roster_rows(db, filters, today=today(), tz=tz, sort=sort, descending=descending,
                            limit=PAGE_SIZE, offset=pages.offset))
    summary = head.units
    _audit("roster.view", f"cycle:{cycle.id}", filters=filters_details(filters), sort=sort,
           direction=form.dir.data, page=pages.number, rows=total)
    return render_template(
        "coordinator/roster.html", cycle=cycle, form=form, filters=filters, rows=rows, counts=counts,
        total=total, pages=pages, sort=sort, descending=descending, query_args=_query_args,
        summary=[(unit, n, done, percent_complete(n, done)) for unit, n, done in summary],
        chart=completion_by_unit_svg(summary),
        chart_narrow=completion_by_unit_svg(summary, narrow=True, id_prefix="unit-chart-narrow"),
        filters_text=describe_filters(filters, cycle.name),
        sort_labels=SORT_LABELS, pdf_max_rows=current_app.config["ROSTER_PDF_MAX_ROWS"], actions=ACTIONS,
        action_form=_action_form(), roster_query=request.query_string.decode("ascii", "replace"),
        not_done=sum(counts[s] for s in NOT_DONE_STATUSES),
        printed_at=request_now(),
        folded_in_use=_folded_in_use(form), folded_open=_folded_in_use(form),
        multiple_policies=len(cycle.policy_versions) > 1 and not filters.policy_id)


# --- roster actions ------------------------------------------------------------------------------
# Tick rows (or every row that matches), choose remind, exempt or grant attempts, check the list
# of who is affected and who is skipped, confirm. The rules are lms.services.roster_actions'.

def _action_form() -> RosterActionForm:
    """The roster action form, read from the POST (if any), with the actions as its choices."""
    form = RosterActionForm()
    form.action.choices = list(ACTIONS.items())
    return form


def _back_to_roster(cycle: Cycle, query: str | None):
    """A redirect to the roster view the action was chosen from."""
    url = url_for(".roster", cycle_id=cycle.id)
    return redirect(f"{url}?{query}" if query else url, 303)


def _action_choice(cycle: Cycle) -> tuple[RosterActionForm, RosterFilters | None, list[int] | None, str | None]:
    """The posted choice: its form, the roster filters it was made under, the rows ticked (None
    for every row that matches), and what is wrong with it, if anything."""
    form = _action_form()
    if not form.validate_on_submit():
        problems = [e for f in form for e in f.errors]
        return form, None, None, " ".join(problems) or "Choose an action, then try again."
    roster_form = _roster_form(cycle, MultiDict(parse_qsl(form.query.data or "", keep_blank_values=True)))
    filters = _roster_filters(cycle, roster_form)
    if filters is None:
        return form, None, None, "The roster filters are not right; correct them and choose again."
    if form.all_matching.data:
        return form, filters, None, None
    ids = [ascii_int(value, low=1) for value in form.row.data or []]
    if not ids:
        return form, filters, None, ("Tick at least one row (or “every row that matches”), "
                                     "then choose the action.")
    if None in ids:
        return form, filters, None, "A ticked row is not one of this roster's; choose the rows again."
    if len(set(ids)) > MAX_TICKED_ROWS:
        return form, filters, None, (f"Tick at most {MAX_TICKED_ROWS:,} rows, or use “every row that matches” "
                                     "with filters that narrow the roster.")
    return form, filters, sorted(set(ids)), None


def _plan(cycle: Cycle, form: RosterActionForm, filters: RosterFilters, ids: list[int] | None) -> ActionPlan:
    return plan_action(get_session(), filters, action=form.action.data, assignment_ids=ids,
                       actor_id=current_user.id, today=today(), tz=_tz(),
                       max_members=current_app.config["ROSTER_ACTION_MAX_MEMBERS"])


#: The fields each action asks for on its confirmation page (a reminder asks none).
DETAIL_FORMS = {"exempt": ExemptionForm, "grant": AttemptGrantForm}


def _detail_form(action: str, *, submitted: bool):
    """The action's own form (reason; attempts and password), read from the POST if ``submitted``."""
    form_class = DETAIL_FORMS.get(action)
    if form_class is None:
        return None
    return form_class() if submitted else form_class(formdata=None)


def _action_page(cycle: Cycle, form: RosterActionForm, filters: RosterFilters, plan: ActionPlan,
                 detail_form=None, status: int = 200, notice: str | None = None):
    """The confirmation page: who the action affects, who it skips and why, the action's own
    fields, and the button that applies it. The choice rides along in hidden fields."""
    form.fingerprint.data = plan.fingerprint
    if detail_form is None:
        detail_form = _detail_form(plan.action, submitted=False)
    return render_template("coordinator/roster_action.html", cycle=cycle, form=form, plan=plan,
                           detail_form=detail_form, filters_text=describe_filters(filters, cycle.name), notice=notice,
                           action_label=ACTIONS[plan.action], ticked=None if form.all_matching.data
                           else form.row.data), status


def _value(form, name: str, default):
    """A field's value, or ``default`` when the form (or the field) is absent or empty."""
    field = getattr(form, name, None) if form is not None else None
    return field.data if field is not None and field.data is not None else default


def _action_scope(form: RosterActionForm, filters: RosterFilters, ids: list[int] | None) -> dict:
    """What the coordinator chose, for the audit events."""
    if ids is None:
        return {"scope": "all matching", "filters": filters_details(filters)}
    return {"scope": "ticked", "rows_ticked": len(ids)}


@bp.post("/cycles/<int:cycle_id>/roster/actions")
@coordinator_required
def roster_action(cycle_id: int):
    """Confirm an action on roster rows: the list of who it affects and who it skips, and why."""
    cycle = cycle_or_404(cycle_id)
    form, filters, ids, problem = _action_choice(cycle)
    if problem:
        flash(problem, "error")
        return _back_to_roster(cycle, form.query.data)
    try:
        plan = _plan(cycle, form, filters, ids)
    except ActionError as exc:
        flash(str(exc), "error")
        return _back_to_roster(cycle, form.query.data)
    # The list names members and their standing: a roster read, audited like one.
    _audit("roster.action_preview", f"cycle:{cycle.id}", action=plan.action, affected=len(plan.affected),
           skipped=len(plan.skipped), **_action_scope(form, filters, ids))
    return _action_page(cycle, form, filters, plan)


@bp.post("/cycles/<int:cycle_id>/roster/actions/apply")
@coordinator_required
def roster_action_apply(cycle_id: int):
    """Apply a confirmed roster action to everyone on its list, or to nobody."""
    cycle = cycle_or_404(cycle_id)
    form, filters, ids, problem = _action_choice(cycle)
    if problem:
        flash(problem, "error")
        return _back_to_roster(cycle, form.query.data)
    db = get_session()
    try:
        plan = _plan(cycle, form, filters, ids)
    except ActionError as exc:
        flash(str(exc), "error")
        return _back_to_roster(cycle, form.query.data)
    detail_form = _detail_form(plan.action, submitted=True)
    if plan.fingerprint != form.fingerprint.data:
        # Someone finished, was exempted or now matches the filters: the list shown is not the list.
        return _action_page(cycle, form, filters, plan, detail_form, 409, notice=(
            "The list changed since you opened this page (someone's training moved on, or the filters now "
            "match different people). Nothing was done. Check the list below, then confirm again."))
    if detail_form is not None and not detail_form.validate():
        return _action_page(cycle, form, filters, plan, detail_form, 400)
    actor = current_user._get_current_object()
    try:
        result = apply_action(
            db, plan, cycle, actor=actor, now=request_now(), today=today(), ip=client_ip(),
            reason=_value(detail_form, "reason", ""), attempts=_value(detail_form, "attempts", 0),
            password=_value(detail_form, "password", ""),
            department=current_app.config["DEPARTMENT_NAME"], sender=current_app.config["MAIL_SENDER"],
            base_url=public_url(current_app.config, ""), tz=_tz(), scope=_action_scope(form, filters, ids))
    except ActionError as exc:
        db.rollback()
        flash(str(exc), "error")
        return _back_to_roster(cycle, form.query.data)
    except ExemptionError as exc:
        db.rollback()
        detail_form.reason.errors.append(f"Nothing was done: {exc}.")
        return _action_page(cycle, form, filters, plan, detail_form, 400)
    except GrantError as exc:
        db.rollback()
        for name, message in exc.problems.items():
            (getattr(detail_form, name).errors if name else detail_form.form_errors).append(message)
        locked = "password" in exc.problems and count_reauthentication_failure(
            db, actor, action="quiz.grant_attempts", now=request_now(), ip=client_ip(),
            rules=SignInRules.from_config(current_app.config))
        keep_on_error()  # the wrong password stays counted
        if locked:
            return signed_out_locked()
        return _action_page(cycle, form, filters, plan, detail_form, 400)
    if plan.action == "remind":
        after_commit(wake, current_app._get_current_object())
    flash(_done_message(plan.action, result, cycle, _value(detail_form, "attempts", 0)), "success")
    return _back_to_roster(cycle, form.query.data)


def _done_message(action: str, result: ActionResult, cycle: Cycle, attempts: int) -> str:
    """What an applied roster action did, in a sentence."""
    n = result.done
    if action == "remind":
        return (f"Queued {n} reminder{'' if n == 1 else 's'}; they go out in the background."
                + (f" {result.already_reminded} already reminded today." if result.already_reminded else ""))
    if action == "exempt":
        return f"Exempted {n} member{'' if n == 1 else 's'} from the {cycle.name} cycle."
    return (f"Granted {attempts} more quiz attempt{'' if attempts == 1 else 's'} on {n} "
            f"assignment{'' if n == 1 else 's'}.")
def _roster_head(db, filters: RosterFilters, tz: str) -> RosterSummary:
    """The roster's counts per status and per unit; those of a large roster are kept for a few
    seconds by this worker (ROSTER_COUNTS_KEEP_SECONDS, ROSTER_COUNTS_KEEP_ROWS in lms/config.py)."""
    config = current_app.config
    kept: dict = current_app.extensions.setdefault("roster_counts", {})
    key, now = (repr(filters), today()), time.monotonic()
    if key in kept and now - kept[key][0] < config["ROSTER_COUNTS_KEEP_SECONDS"]:
        return kept[key][1]
    head = roster_summary(db, filters, today=key[1], tz=tz)
    if config["ROSTER_COUNTS_KEEP_SECONDS"] and sum(head.counts.values()) >= config["ROSTER_COUNTS_KEEP_ROWS"]:
        if len(kept) >= 100:  # many filter combinations: start again rather than grow
            kept.clear()
        kept[key] = (now, head)
    return head


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


@bp.get("/cycles/<int:cycle_id>/roster.<any(csv, xlsx, pdf):kind>")
@coordinator_required
def roster_export(cycle_id: int, kind: str):
    """The current view of the roster (every page of it) as CSV, XLSX or PDF."""
    cycle = cycle_or_404(cycle_id)
    form = _roster_form(cycle)
    filters = _roster_filters(cycle, form)
    if filters is None:
        problems = "; ".join(e for f in form for e in f.errors)
        abort(400, description=f"The roster filters are not right: {problems}")
    return send_roster_export(cycle, form, filters, kind, title=f"{cycle.name} roster", stem=file_stem(cycle))


def send_roster_export(cycle: Cycle, form: RosterForm, filters: RosterFilters, kind: str, *, title: str,
                       stem: str):
    """The roster view ``filters`` describe as a CSV, XLSX or PDF download, for the coordinator's
    roster and a supervisor's alike (their filters carry ``reports_to``); audited.

    CSV always streams. XLSX and PDF up to EXPORT_JOB_ROWS / EXPORT_JOB_PDF_ROWS rows are built in
    the request (well under a second or two); larger ones run as jobs with a progress page (the
    current blueprint's ``export_job``) and a download. A PDF over ROSTER_PDF_MAX_ROWS is refused
    with CSV/XLSX offered; an empty view is not exported at all."""
    db, tz = get_session(), _tz()
    sort, descending = form.sort.data, form.dir.data == "desc"
    head = roster_summary(db, filters, today=today(), tz=tz)
    counts = head.counts
    total = sum(counts.values())
    if total == 0:
        # Nothing to hand over: back to the roster, which says so, rather than an empty file.
        flash(nothing_matches(), "error")
        return redirect(url_for(".roster", cycle_id=cycle.id, **_query_args(page=None)), 303)
    refusal = pdf_refusal(total, current_app.config["ROSTER_PDF_MAX_ROWS"]) if kind == "pdf" else None
    if refusal:
        abort(400, description=refusal)
    name = f"{stem}-{(filters.as_of or today()).isoformat()}.{kind}"
    headers = {"Content-Disposition": attachment(name)}
    filters_text = describe_filters(filters, cycle.name)
    limit = {"xlsx": current_app.config["EXPORT_JOB_ROWS"], "pdf": current_app.config["EXPORT_JOB_PDF_ROWS"]}
    if kind in limit and total > limit[kind]:
        # A large XLSX or PDF: built by the worker, followed on its own page, downloaded when ready.
        job_id = export_jobs.queue_roster(
            db, filters, fmt=kind, sort=sort, descending=descending, title=title, filters_text=filters_text,
            department=current_app.config["DEPARTMENT_NAME"], now=request_now(), today=today(),
            requested_by_id=current_user.id, ip=client_ip(),
            audit_details={"rows": total, "filters": filters_details(filters)}, file_stem=stem,
            pdf_max_rows=current_app.config["ROSTER_PDF_MAX_ROWS"])
        after_commit(wake, current_app._get_current_object())
        return redirect(url_for(".export_job", job_id=job_id), 303)

    def rows():
        return roster_rows(db, filters, today=today(), tz=tz, sort=sort, descending=descending)

    if kind == "csv":
        # The event is committed before the first byte goes out, so no download goes unrecorded.
        _audit("roster.export", f"cycle:{cycle.id}", format=kind, rows=total, filters=filters_details(filters),
               via="web")
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
    _audit("roster.export", f"cycle:{cycle.id}", format=kind, rows=total, bytes=len(body),
           filters=filters_details(filters), via="web")
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
                 grant_form: AttemptGrantForm | None = None, *, template: str = "coordinator/member.html",
                 read_only: bool = False):
    """Render a member's progress in a cycle: each policy's lessons, attempts, the attempts granted,
    signature, and the exemptions granted and lifted. ``grant_form`` is a submitted grant form to
    show with its errors in place of that assignment's blank one. ``read_only`` (a supervisor's
    view, in ``template``) leaves out the forms to exempt and to grant attempts."""
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
    return render_template(template, cycle=cycle, member=member, items=items,
                           exemption=current_exemption(db, cycle.id, member.id),
                           exemptions=_exemptions(cycle, member.id), form=form,
                           can_grant=member.id != current_user.id and not read_only, read_only=read_only,
                           tz=ZoneInfo(tz)), status


@bp.get("/cycles/<int:cycle_id>/members/<int:member_id>")
@coordinator_required
def member_progress(cycle_id: int, member_id: int):
    """One member's progress in a cycle, with their exemption and the form to grant or lift one."""
    cycle = cycle_or_404(cycle_id)
    member = _member_in_cycle_or_404(cycle, member_id)
    _audit("roster.view_member", f"member:{member.id}", cycle=cycle.id, cycle_name=cycle.name, badge=member.badge)
    return _member_page(cycle, member, ExemptionForm(formdata=None))


@bp.post("/cycles/<int:cycle_id>/members/<int:member_id>/exemption")
@coordinator_required
def grant(cycle_id: int, member_id: int):
    """Exempt a member from a cycle, with the reason."""
    cycle = cycle_or_404(cycle_id)
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
                return redirect(url_for(".member_progress", cycle_id=cycle.id, member_id=member.id), 303)
        else:
            _audit("exemption.grant", f"exemption:{exemption.id}", cycle=cycle.id, cycle_name=cycle.name, member_id=member.id,
                   badge=member.badge, reason=exemption.reason)
            flash(f"{member.full_name} is exempt from the {cycle.name} cycle.", "success")
            return redirect(url_for(".member_progress", cycle_id=cycle.id, member_id=member.id), 303)
    return _member_page(cycle, member, form, 400)


@bp.post("/cycles/<int:cycle_id>/members/<int:member_id>/assignments/<int:assignment_id>/attempts")
@coordinator_required
def grant_quiz_attempts(cycle_id: int, member_id: int, assignment_id: int):
    """Grant a member extra quiz attempts, with the reason, confirmed by the coordinator's password."""
    cycle = cycle_or_404(cycle_id)
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
            keep_on_error()  # the refused grant's wrong password counts toward the lockout
            if locked:
                return signed_out_locked()
        else:
            flash(f"Granted {member.full_name} {form.attempts.data} more quiz "
                  f"attempt{'s' if form.attempts.data != 1 else ''}.", "success")
            return redirect(url_for(".member_progress", cycle_id=cycle.id, member_id=member.id), 303)
    return _member_page(cycle, member, ExemptionForm(formdata=None), 400, grant_form=form)


@bp.post("/cycles/<int:cycle_id>/exemptions/<int:exemption_id>/lift")
@coordinator_required
def lift(cycle_id: int, exemption_id: int):
    """Lift an exemption: the member owes the cycle's training again; the record of it stays."""
    cycle = cycle_or_404(cycle_id)
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
        _audit("exemption.lift", f"exemption:{exemption.id}", cycle=cycle.id, cycle_name=cycle.name, member_id=member.id,
               badge=member.badge)
        flash(f"Lifted {member.full_name}'s exemption from the {cycle.name} cycle.", "success")
    if request.form.get("back") == "exemptions":
        return redirect(url_for(".exemptions", cycle_id=cycle.id), 303)
    return redirect(url_for(".member_progress", cycle_id=cycle.id, member_id=member.id), 303)


@bp.get("/cycles/<int:cycle_id>/exemptions")
@coordinator_required
def exemptions(cycle_id: int):
    """Every exemption in a cycle, current and lifted, with who granted and lifted it, when and why."""
    cycle = cycle_or_404(cycle_id)
    _audit("exemption.list", f"cycle:{cycle.id}")
    return render_template("coordinator/exemptions.html", cycle=cycle, exemptions=_exemptions(cycle),
                           tz=ZoneInfo(_tz()))
