"""A voided acknowledgment says so wherever it appears: the public verify page, the officer's
history, dashboard and assignment page, HR's member page, the "as of" evidence (page and PDF),
``verify --receipt`` and HR's receipt check, which gives the same answer as the command."""
from __future__ import annotations

import subprocess

import pytest
from sqlalchemy import select

from lms.db import utcnow
from lms.models import Acknowledgment, AuditEvent, Receipt
from lms.services.clock import local_date
from lms.services.verification import RECEIPT_EXIT_CODES
from tests.conftest import PASSWORD, csrf_token
from tests.helpers import assignment_of, day_shown, pass_quiz, read_all_lessons, sign

REASON = "Signed under the wrong badge, HR ticket 4411"


def complete_training(client, auth, db, member) -> Acknowledgment:
    """Sign in as the member, read every lesson, pass the quiz, sign, sign out."""
    auth.sign_in(member.badge)
    assignment_id = assignment_of(db, member).id
    read_all_lessons(client, assignment_id)
    pass_quiz(client, db, assignment_id)
    assert sign(client, assignment_id, member.full_name).status_code == 303
    auth.sign_out()
    db.expire_all()
    return db.scalars(select(Acknowledgment).where(Acknowledgment.member_id == member.id)
                      .order_by(Acknowledgment.generation.desc())).first()


def void_through_web(client, auth, ack: Acknowledgment, hr) -> None:
    auth.sign_in(hr.badge)
    url = f"/hr/acknowledgments/{ack.id}/void"
    response = client.post(url, data={"csrf_token": csrf_token(client, url), "reason": REASON,
                                      "password": PASSWORD})
    assert response.status_code == 303, response.get_data(as_text=True)
    auth.sign_out()


def check_on_the_web(client, data: bytes, name: str = "handed-in.pdf"):
    """HR uploads a receipt file to the check page."""
    import io

    url = "/hr/receipts/check"
    return client.post(url, data={"csrf_token": csrf_token(client, url), "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def verify_events(db) -> list[AuditEvent]:
    db.expire_all()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == "receipt.verify").order_by(AuditEvent.id)))


@pytest.fixture
def voided(app, client, auth, db, make_member, open_cycle):
    """Alex signed through the pages and HR voided it through the void page."""
    alex = make_member(first="Alex", last="Rivera", badge="501")
    hr = make_member(first="Pat", last="Lee", badge="900", roles=("hr",))
    open_cycle()
    ack = complete_training(client, auth, db, alex)
    pdf = db.get(Receipt, ack.id).pdf
    void_through_web(client, auth, ack, hr)
    voided_on = local_date(utcnow(), app.config["TIMEZONE"])
    return {"alex": alex, "hr": hr, "ack": ack, "pdf": pdf, "on": voided_on}


def test_public_verify_page_says_voided_with_the_date_only(client, voided):
    ack = voided["ack"]
    page = client.get("/verify", query_string={"code": ack.verification_code}).get_data(as_text=True)
    assert f"voided on {day_shown(voided['on'])}" in page
    assert "Yes: this code matches" not in page
    # No reason, no name: the public learns only that the record was corrected, and when.
    assert REASON not in page and "Alex Rivera" not in page and "Pat Lee" not in page


def test_officer_sees_the_void_and_why_they_must_sign_again(client, auth, db, voided):
    ack = voided["ack"]
    auth.sign_in(voided["alex"].badge)
    history = client.get("/training/history").get_data(as_text=True)
    assert "Voided</span> on " + day_shown(voided["on"]) in history and REASON in history
    assert "You must sign this policy again" in history and "Download voided PDF" in history

    receipt = client.get(f"/training/receipts/{ack.id}.pdf")
    assert receipt.status_code == 200 and receipt.data == voided["pdf"]
    assert receipt.headers["Content-Disposition"].endswith('-VOIDED.pdf"')
    assert receipt.headers["X-Acknowledgment-Voided"] == voided["on"].isoformat()
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "receipt.download")).one()
    assert event.details == {"voided": True}

    dashboard = client.get("/training/").get_data(as_text=True)
    assert "was\n  <strong>voided</strong> by HR on" in dashboard and REASON in dashboard
    assert "you must sign this policy again (your lessons and quiz still count)" in dashboard
    assert ">Sign again<" in dashboard
    page = client.get(f"/training/{ack.assignment_id}").get_data(as_text=True)
    assert REASON in page and "Read and sign the policy again" in page

    # Signed again: the new signature stands and the notice is gone.
    assert sign(client, ack.assignment_id, "Alex Rivera").status_code == 303
    dashboard = client.get("/training/").get_data(as_text=True)
    assert REASON not in dashboard and "Complete" in dashboard
    history = client.get("/training/history").get_data(as_text=True)
    assert history.count("Stands</span>") == 1 and history.count("Voided</span>") == 1


def test_hr_member_page_and_receipt_mark_the_void(client, auth, db, voided):
    auth.sign_in(voided["hr"].badge)
    page = client.get(f"/hr/members/{voided['alex'].id}").get_data(as_text=True)
    assert f"Voided</span> {day_shown(voided['on'])} by Pat Lee" in page and REASON in page
    assert "Receipt PDF (voided)" in page
    receipt = client.get(f"/hr/receipts/{voided['ack'].id}.pdf")
    assert receipt.status_code == 200 and receipt.headers["X-Acknowledgment-Voided"] == voided["on"].isoformat()


def test_as_of_evidence_says_why_the_answer_is_no(client, auth, voided, tmp_path):
    auth.sign_in(voided["hr"].badge)
    day = voided["on"].isoformat()
    page = client.get(f"/hr/members/{voided['alex'].id}/as-of", query_string={"on": day}).get_data(as_text=True)
    assert 'answer-no">No</span>: the acknowledgment signed' in page
    assert voided["ack"].verification_code in page and f"on {day_shown(voided['on'])}: {REASON}" in page

    response = client.get(f"/hr/members/{voided['alex'].id}/as-of.pdf", query_string={"on": day})
    assert response.status_code == 200
    (tmp_path / "evidence.pdf").write_bytes(response.data)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "evidence.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    flat = " ".join(text.split())
    assert "had been voided on" in flat and day in flat and voided["ack"].verification_code in flat


def test_verify_receipt_exits_3_for_a_void_and_1_for_no_match(runner, db, voided, tmp_path):
    handed_in = tmp_path / "receipt.pdf"
    handed_in.write_bytes(voided["pdf"])
    result = runner.invoke(args=["lms", "verify", "--receipt", str(handed_in)])
    assert result.exit_code == 3 == RECEIPT_EXIT_CODES["voided"], result.output
    assert "Voided:            YES" in result.output and f"VOIDED on {voided['on']:%Y-%m-%d}" in result.output

    handed_in.write_bytes(voided["pdf"] + b"\n%")
    result = runner.invoke(args=["lms", "verify", "--receipt", str(handed_in)])
    assert result.exit_code == 1, result.output
    assert "does not match any stored record" in result.output
    events = verify_events(db)
    assert [e.details["result"] for e in events] == ["voided", "no_match"]
    assert all(e.actor_id is None and e.details["via"] == "cli" and e.outcome == "failure" for e in events)


def test_hr_checks_a_receipt_file_on_the_web_with_the_cli_answer(client, auth, runner, db, voided, make_member,
                                                                 tmp_path):
    auth.sign_in(voided["hr"].badge)
    assert "/hr/receipts/check" in client.get("/hr/").get_data(as_text=True)
    page = client.get("/hr/receipts/check")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.get_data(as_text=True)

    response = check_on_the_web(client, voided["pdf"])
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"Voided: this receipt matches an acknowledgment voided on {day_shown(voided['on'])}" in html
    assert REASON in html and voided["ack"].verification_code in html

    response = check_on_the_web(client, b"%PDF-1.7 not a receipt")
    assert "No match: this file is not a receipt on record" in response.get_data(as_text=True)

    # The signature made after the void stands, on the web and through the command line alike.
    auth.sign_out()
    auth.sign_in(voided["alex"].badge)  # lessons read and quiz passed still count: only the signature is owed
    assert sign(client, voided["ack"].assignment_id, "Alex Rivera").status_code == 303
    auth.sign_out()
    db.expire_all()
    again = db.scalars(select(Acknowledgment).where(Acknowledgment.generation == 1)).one()
    standing = db.get(Receipt, again.id).pdf
    auth.sign_in(voided["hr"].badge)
    html = check_on_the_web(client, standing).get_data(as_text=True)
    assert "Stands: this receipt matches a signed acknowledgment on record" in html
    (tmp_path / "r.pdf").write_bytes(standing)
    assert runner.invoke(args=["lms", "verify", "--receipt", str(tmp_path / "r.pdf")]).exit_code == 0

    events = verify_events(db)
    assert [(e.details["via"], e.details["result"]) for e in events] == [
        ("web", "voided"), ("web", "no_match"), ("web", "stands"), ("cli", "stands")]
    web = [e for e in events if e.details["via"] == "web"]
    assert all(e.actor_id == voided["hr"].id and e.ip == "127.0.0.1" for e in web)
    assert web[0].target == f"acknowledgment:{voided['ack'].id}" and web[0].details["file"] == "handed-in.pdf"
    assert events[2].outcome == "success" and events[2].details["sha256"] == events[3].details["sha256"]


def test_receipt_check_page_needs_a_file(client, auth, voided):
    auth.sign_in(voided["hr"].badge)
    url = "/hr/receipts/check"
    response = client.post(url, data={"csrf_token": csrf_token(client, url)}, content_type="multipart/form-data")
    assert response.status_code == 400 and "Choose the receipt PDF to check." in response.get_data(as_text=True)
