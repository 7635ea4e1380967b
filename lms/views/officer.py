"""The officer's pages: assigned training, lessons, the quiz, signing, receipts and history."""
from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from lms.auth import role_required, session_seconds_left, signed_out_locked
from lms.db import get_session
from lms.forms import ActionForm, SignatureForm, SsoSignatureForm
from lms.models import Acknowledgment, Assignment, Lesson, QuizAttempt, Receipt
from lms.services import library as library_service
from lms.services import progress as progress_service
from lms.services import quiz as quiz_service
from lms.services.accounts import SignInRules, count_reauthentication_failure
from lms.services.attempt_grants import attempt_grants, training_contacts
from lms.services.audit import record_event
from lms.services.clock import local_date
from lms.services.deadlines import DueNotice, due_notice
from lms.services.hr import member_record
from lms.services.lessons import render_lesson
from lms.services.policy_text import render_policy, search_policy
from lms.services.receipt_signature import SigningConfigError, receipt_sealer
from lms.services.records import void_of
from lms.services.signing import (
    SignerProof,
    SigningError,
    SigningFacts,
    sign_acknowledgment,
    signature_problems,
    signing_blockers,
)
from lms.services.validators import ascii_int
from lms.services.versions import changes_since_previous
from lms.web import attachment, client_ip, keep_on_error, request_now, today

bp = Blueprint("officer", __name__, url_prefix="/training")
officer_required = role_required("officer")


def _own_assignment(assignment_id: int) -> Assignment:
    """The signed-in member's assignment, or 404: another member's id looks exactly like a missing one."""
    assignment = progress_service.member_assignment(get_session(), current_user.id, assignment_id)
    if assignment is None:
        abort(404)
    return assignment


def _audit(action: str, target: str, **details) -> None:
    """Record what the signed-in member did, from where, now."""
    record_event(get_session(), action, at=request_now(), actor_id=current_user.id, target=target,
                 ip=client_ip(), details=details or None)


def _progress(assignment: Assignment) -> progress_service.AssignmentProgress:
    return progress_service.progress_for(get_session(), assignment, today=today(),
                                         tz=current_app.config["TIMEZONE"])


def _contacts() -> list[tuple[str, str | None]]:
    """Whom the member asks about their training (TRAINING_CONTACT_*, else the coordinators)."""
    return training_contacts(get_session(), name=current_app.config.get("TRAINING_CONTACT_NAME"),
                             email=current_app.config.get("TRAINING_CONTACT_EMAIL"))


@bp.context_processor
def _countdown():
    """``due_notice(item)`` for the officer's templates: the days left on an assignment, as of the
    department's today."""
    def notice(item: progress_service.AssignmentProgress) -> DueNotice | None:
        return due_notice(due_date=item.assignment.due_date, status=item.status, today=today())
    return {"due_notice": notice}


@bp.get("/")
@officer_required
def dashboard():
    """What is assigned, when it is due, and how far along the member is."""
    db = get_session()
    items = progress_service.progresses_for(db, progress_service.member_assignments(db, current_user.id),
                                         today=today(), tz=current_app.config["TIMEZONE"])
    return render_template("officer/dashboard.html", items=items, today=today())


@bp.get("/<int:assignment_id>")
@officer_required
def assignment(assignment_id: int):
    """One assignment: its lessons, the quiz and the signature, in order."""
    assignment = _own_assignment(assignment_id)
    db = get_session()
    done = progress_service.completed_lesson_ids(db, assignment.id)
    return render_template("officer/assignment.html", item=_progress(assignment),
                           changes=changes_since_previous(db, assignment.policy_version),
                           lessons=assignment.policy_version.lessons, done=done,
                           open_attempt=quiz_service.open_attempt(db, assignment.id),
                           attempts=quiz_service.submitted_attempts(db, assignment.id),
                           grants=attempt_grants(db, [assignment.id])[assignment.id], contacts=_contacts(),
                           form=ActionForm())


@bp.get("/<int:assignment_id>/lessons/<int:lesson_id>")
@officer_required
def lesson(assignment_id: int, lesson_id: int):
    """A lesson, with the verbatim policy text it covers."""
    assignment = _own_assignment(assignment_id)
    lessons = assignment.policy_version.lessons
    index = next((i for i, each in enumerate(lessons) if each.id == lesson_id), None)
    if index is None:
        abort(404)
    db = get_session()
    changes = changes_since_previous(db, assignment.policy_version)
    return render_template(
        "officer/lesson.html", item=_progress(assignment), lesson=lessons[index],
        changes=changes, lesson_changes=changes.in_sections(lessons[index].sections) if changes else [],
        body=render_lesson(lessons[index], assignment.policy_version), position=index + 1,
        lessons=lessons, done=progress_service.completed_lesson_ids(db, assignment.id),
        previous=lessons[index - 1] if index > 0 else None,
        following=lessons[index + 1] if index + 1 < len(lessons) else None, form=ActionForm())


@bp.post("/<int:assignment_id>/lessons/<int:lesson_id>/read")
@officer_required
def mark_read(assignment_id: int, lesson_id: int):
    """Record the lesson as read and go on to the next step."""
    assignment = _own_assignment(assignment_id)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    db = get_session()
    lesson = db.get(Lesson, lesson_id)
    if lesson is None or lesson.version_id != assignment.policy_version_id or lesson.retired:
        abort(404)
    try:
        if progress_service.mark_lesson_read(db, assignment, lesson, request_now()):
            _audit("lesson.read", f"assignment:{assignment.id}", lesson=lesson.slug)
    except IntegrityError:  # a double click recorded it a moment ago
        db.rollback()
    lessons = assignment.policy_version.lessons
    following = next((each for each in lessons if each.position > lesson.position), None)
    if following is not None:
        return redirect(url_for(".lesson", assignment_id=assignment.id, lesson_id=following.id))
    flash("All lessons read. You can take the quiz now.", "success")
    return redirect(url_for(".quiz", assignment_id=assignment.id))


@bp.get("/<int:assignment_id>/quiz")
@officer_required
def quiz(assignment_id: int):
    """The open attempt's questions, or the way to start one."""
    assignment = _own_assignment(assignment_id)
    db = get_session()
    attempt = quiz_service.open_attempt(db, assignment.id)
    return render_template("officer/quiz.html", item=_progress(assignment), attempt=attempt,
                           attempts=quiz_service.submitted_attempts(db, assignment.id),
                           form=ActionForm(), chosen=quiz_service.saved_answers(attempt) if attempt else {},
                           problems={}, contacts=_contacts())


@bp.post("/<int:assignment_id>/quiz/start")
@officer_required
def start_quiz(assignment_id: int):
    """Draw a new attempt (or return to the open one)."""
    assignment = _own_assignment(assignment_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    db = get_session()
    try:
        already_open = quiz_service.open_attempt(db, assignment.id) is not None
        attempt = quiz_service.start_attempt(db, assignment, request_now())
        if not already_open:  # a reload returns to the open attempt; only a new draw is news
            _audit("quiz.start", f"assignment:{assignment.id}", attempt=attempt.number)
    except quiz_service.QuizError as exc:
        db.rollback()
        flash(str(exc), "error")
    except IntegrityError:  # started twice at once: the other request's attempt stands
        db.rollback()
    return redirect(url_for(".quiz", assignment_id=assignment.id))


@bp.post("/<int:assignment_id>/quiz/<int:attempt_id>")
@officer_required
def submit_quiz(assignment_id: int, attempt_id: int):
    """Score the attempt on the server and show the feedback."""
    assignment = _own_assignment(assignment_id)
    db = get_session()
    attempt = db.get(QuizAttempt, attempt_id)
    if attempt is None or attempt.assignment_id != assignment.id:
        abort(404)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    answers = _answers_from_form()
    try:
        quiz_service.submit_attempt(db, attempt, answers, request_now())
        _audit("quiz.submit", f"assignment:{assignment.id}", attempt=attempt.number, score=attempt.score,
               passed=attempt.passed)
    except quiz_service.AnswerError as exc:
        db.rollback()
        chosen = {p: set(ids) for p, ids in answers.items()}
        return render_template("officer/quiz.html", item=_progress(assignment), attempt=attempt,
                               attempts=quiz_service.submitted_attempts(db, assignment.id),
                               form=form, chosen=chosen, problems=exc.problems, contacts=_contacts()), 400
    except quiz_service.QuizError as exc:
        db.rollback()
        flash(str(exc), "error")
        return redirect(url_for(".quiz", assignment_id=assignment.id), 303)
    return redirect(url_for(".quiz_result", assignment_id=assignment.id, attempt_id=attempt.id), 303)


@bp.post("/<int:assignment_id>/quiz/<int:attempt_id>/answers")
@officer_required
def save_answers(assignment_id: int, attempt_id: int):
    """Keep the answers chosen so far on the server, unscored: each choice as the page's script
    sends it (``positions`` names the questions it covers), or the whole form from the "Save
    answers" button without JavaScript. JSON for the script; a redirect back to the quiz otherwise."""
    assignment = _own_assignment(assignment_id)
    db = get_session()
    attempt = db.get(QuizAttempt, attempt_id)
    if attempt is None or attempt.assignment_id != assignment.id:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    wants_json = request.accept_mimetypes.best == "application/json"
    answers = _answers_from_form()
    covered = request.form.getlist("positions")
    if covered:
        positions = {ascii_int(p) for p in covered}
        if None in positions:
            message = "A question is named by its number in the digits 0-9."
            if wants_json:
                return jsonify(error=message), 400
            abort(400, description=message)
    else:  # the whole form: a question left blank (checkboxes all cleared) is cleared
        positions = {item.position for item in attempt.items}
    for position in positions:
        answers.setdefault(position, [])
    try:
        saved = quiz_service.save_answers(db, attempt, answers, request_now())
    except quiz_service.AnswerError as exc:
        db.rollback()
        if wants_json:
            return jsonify(error=str(exc), problems={str(p): m for p, m in exc.problems.items()}), 400
        flash(f"Your answers could not be saved: {exc}.", "error")
        return redirect(url_for(".quiz", assignment_id=assignment.id), 303)
    except quiz_service.QuizError as exc:
        db.rollback()
        if wants_json:
            return jsonify(error=str(exc)), 409
        flash(str(exc), "error")
        return redirect(url_for(".quiz", assignment_id=assignment.id), 303)
    if wants_json:
        return jsonify(saved=saved, total=len(attempt.items), seconds_left=session_seconds_left())
    flash(f"Answers saved: {saved} of {len(attempt.items)} questions answered. Submit when you are ready.",
          "success")
    return redirect(url_for(".quiz", assignment_id=assignment.id), 303)


def _answers_from_form() -> dict[int, list[int]]:
    """Read ``q<position>`` fields into position -> option ids; junk values become problems later."""
    answers: dict[int, list[int]] = {}
    for key in request.form:
        position = ascii_int(key[1:]) if key.startswith("q") else None
        if position is not None:
            values = request.form.getlist(key)
            answers[position] = [-1 if (option := ascii_int(v)) is None else option for v in values]
    return answers


@bp.get("/<int:assignment_id>/quiz/<int:attempt_id>")
@officer_required
def quiz_result(assignment_id: int, attempt_id: int):
    """A submitted attempt: score, and for every question the right answer and why."""
    assignment = _own_assignment(assignment_id)
    db = get_session()
    attempt = db.get(QuizAttempt, attempt_id)
    if attempt is None or attempt.assignment_id != assignment.id:
        abort(404)
    if attempt.submitted_at is None:
        return redirect(url_for(".quiz", assignment_id=assignment.id))
    return render_template("officer/quiz_result.html", item=_progress(assignment), attempt=attempt,
                           form=ActionForm(), contacts=_contacts())


@bp.route("/<int:assignment_id>/sign", methods=["GET", "POST"])
@officer_required
def sign(assignment_id: int):
    """The full policy text, the attestation, and the two signature components: the typed name and
    the password, or under single sign-on a fresh sign-in at the identity provider."""
    from lms.views import sso

    assignment = _own_assignment(assignment_id)
    db = get_session()
    version = assignment.policy_version
    item = _progress(assignment)
    if item.acknowledgment is not None:
        return redirect(url_for(".signed", assignment_id=assignment.id))
    blockers = signing_blockers(db, assignment)
    protocol = sso.signing_protocol()
    form = SsoSignatureForm() if protocol else SignatureForm()
    if request.method == "GET":
        form.text_sha256.data = version.text_sha256
    elif form.validate_on_submit() and not blockers and protocol:
        problems = signature_problems(db, assignment=assignment, member=current_user, typed_name=form.full_name.data,
                                      shown_text_sha256=form.text_sha256.data)
        if not problems:
            # The signature completes when the member comes back from a fresh sign-in.
            return sso.send_to_provider(protocol, purpose="sign", signature={
                "assignment_id": assignment.id, "typed_name": form.full_name.data,
                "text_sha256": form.text_sha256.data})
        _show_problems(form, problems)
        _audit_refused_signature(assignment, problems)
        keep_on_error()  # the refused signature stays on the record
    elif form.validate_on_submit() and not blockers:
        try:
            facts = _signing_facts()
        except SigningConfigError as exc:  # a key file removed or replaced since start-up
            current_app.logger.error("cannot sign receipts: %s", exc)
            form.form_errors.append(SEALER_UNAVAILABLE)
            return _sign_page(item, version, form, blockers, protocol), 503
        try:
            _ack, created = sign_acknowledgment(
                db, assignment=assignment, member=current_user, typed_name=form.full_name.data,
                password=form.password.data, shown_text_sha256=form.text_sha256.data, facts=facts)
        except SigningError as exc:
            db.rollback()
            _show_problems(form, exc.problems)
            _audit_refused_signature(assignment, exc.problems)
            locked = "password" in exc.problems and count_reauthentication_failure(
                db, current_user._get_current_object(), action="ack.sign", now=request_now(), ip=client_ip(),
                rules=SignInRules.from_config(current_app.config))
            keep_on_error()  # the refused signature is audited; a wrong password counts
            if locked:
                return signed_out_locked()
        except IntegrityError:  # a simultaneous submit of the same signature won the race
            db.rollback()
            created = False
        else:
            if created:
                flash("Signed. Your receipt is ready to download.", "success")
            return redirect(url_for(".signed", assignment_id=assignment.id), 303)
    status = 400 if request.method == "POST" else 200
    return _sign_page(item, version, form, blockers, protocol), status


def _sign_page(item, version, form, blockers, protocol):
    """The signing page: the policy text with its structure, the form, and whom to ask."""
    return render_template("officer/sign.html", item=item, version=version, form=form, blockers=blockers,
                           policy_html=render_policy(version.text, version.policy_id),
                           contacts=_contacts(), sso_protocol=protocol)


SEALER_UNAVAILABLE = ("Receipts cannot be signed right now: the department's signing key is not usable. "
                      "Nothing was signed; please tell the administrator.")


def _signing_facts() -> SigningFacts:
    """The request's facts for a signature, with the department's receipt sealer (raises
    SigningConfigError when its key has become unusable since start-up)."""
    return SigningFacts(ip=client_ip(), user_agent=request.user_agent.string or "unknown",
                        now=request_now(), timezone=current_app.config["TIMEZONE"],
                        department=current_app.config["DEPARTMENT_NAME"],
                        sealer=receipt_sealer(current_app.config, current_app.instance_path))


def _show_problems(form, problems: dict[str | None, str]) -> None:
    for field, message in problems.items():
        (getattr(form, field).errors if field and hasattr(form, field) else form.form_errors).append(message)


def _audit_refused_signature(assignment: Assignment, problems: dict[str | None, str]) -> None:
    record_event(get_session(), "ack.sign", at=request_now(), actor_id=current_user.id, ip=client_ip(),
                 target=f"assignment:{assignment.id}", outcome="failure",
                 details={"fields": sorted(f or "form" for f in problems)})


def complete_signature(signature: dict, proof: SignerProof):
    """Finish a signature after the fresh sign-in at the identity provider: the signed-in member's
    assignment, the name they typed and the text they were shown, with the provider's proof."""
    if not current_user.is_authenticated or not current_user.has_role("officer"):
        flash("Your session ended while you were at the identity provider; sign in and sign again.", "error")
        return redirect(url_for("auth.sign_in"), 303)
    assignment = progress_service.member_assignment(get_session(), current_user.id,
                                                    int(signature.get("assignment_id") or 0))
    if assignment is None:
        abort(404)
    db = get_session()
    try:
        facts = _signing_facts()
    except SigningConfigError as exc:
        current_app.logger.error("cannot sign receipts: %s", exc)
        flash(SEALER_UNAVAILABLE, "error")
        return redirect(url_for("officer.sign", assignment_id=assignment.id), 303)
    try:
        _ack, created = sign_acknowledgment(
            db, assignment=assignment, member=current_user, typed_name=signature.get("typed_name") or "",
            shown_text_sha256=signature.get("text_sha256") or "", proof=proof, facts=facts)
    except SigningError as exc:
        db.rollback()
        _audit_refused_signature(assignment, exc.problems)  # kept: the refusal answers with a redirect
        for message in exc.problems.values():
            flash(message, "error")
        return redirect(url_for("officer.sign", assignment_id=assignment.id), 303)
    except IntegrityError:
        db.rollback()
        created = False
    if created:
        flash("Signed. Your receipt is ready to download.", "success")
    return redirect(url_for("officer.signed", assignment_id=assignment.id), 303)


@bp.get("/<int:assignment_id>/signed")
@officer_required
def signed(assignment_id: int):
    """Confirmation of a signature, with the receipt link."""
    assignment = _own_assignment(assignment_id)
    item = _progress(assignment)
    if item.acknowledgment is None:
        return redirect(url_for(".sign", assignment_id=assignment.id))
    return render_template("officer/signed.html", item=item, ack=item.acknowledgment)


@bp.get("/history")
@officer_required
def history():
    """Every acknowledgment the member has signed, each voided one marked with why it was voided."""
    record = member_record(get_session(), current_user.id)
    return render_template("officer/history.html", entries=record.acknowledgments)


def _search_phrase() -> tuple[str, str | None]:
    """The ``q`` search phrase from the address (trimmed), and why it cannot be searched, if so."""
    query = (request.args.get("q") or "").strip()
    return query, library_service.query_problem(query) if query else None


@bp.get("/library")
@officer_required
def library():
    """Every policy version the member was assigned or signed, and a search through their text."""
    entries = library_service.member_library(get_session(), current_user.id)
    query, problem = _search_phrase()
    results = library_service.search_library(entries, query) if query and not problem else None
    return render_template("officer/library.html", entries=entries, query=query, problem=problem,
                           results=results), 400 if problem else 200


@bp.get("/library/<int:version_id>")
@officer_required
def library_policy(version_id: int):
    """One version's full text with its headings, printable, with what the member signed of it and
    when; searched within when ``q`` is given. A version not on the member's shelf is a 404."""
    entry = library_service.library_entry(get_session(), current_user.id, version_id)
    if entry is None:
        abort(404)
    version = entry.version
    query, problem = _search_phrase()
    searched = query if query and not problem else None
    hits = search_policy(version.text, version.policy_id, searched) if searched else None
    return render_template("officer/library_policy.html", entry=entry, version=version, query=query,
                           problem=problem, hits=hits,
                           policy_html=render_policy(version.text, version.policy_id, heading_level=3,
                                                     anchors=True, highlight=searched)), 400 if problem else 200


@bp.get("/receipts/<int:ack_id>.pdf")
@officer_required
def receipt(ack_id: int):
    """Download one's own receipt; any other member's id is a 404.

    A voided one stays downloadable (it is the member's copy of what they signed, and a hearing may
    ask for it), but its file name says VOIDED: the stored PDF itself is never changed.
    """
    db = get_session()
    ack = db.get(Acknowledgment, ack_id)
    if ack is None or ack.member_id != current_user.id:
        abort(404)
    stored = db.get(Receipt, ack.id)
    void = void_of(db, ack.id)
    record_event(db, "receipt.download", at=request_now(), actor_id=current_user.id,
                 target=f"acknowledgment:{ack.id}", ip=client_ip(), details={"voided": void is not None})
    filename = (f"receipt-{ack.policy_ref}-{ack.policy_effective.isoformat()}-{ack.badge}"
                f"{'-VOIDED' if void else ''}.pdf")
    headers = {"Content-Disposition": attachment(filename), "X-Receipt-SHA256": stored.sha256}
    if void is not None:
        headers["X-Acknowledgment-Voided"] = local_date(void.voided_at, current_app.config["TIMEZONE"]).isoformat()
    return Response(stored.pdf, mimetype="application/pdf", headers=headers)
