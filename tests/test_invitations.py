"""Invitations: an import (web or CLI) e-mails each new member a one-time, expiring link to set
their own password; the administrator sees who was invited and re-sends in bulk; a member with no
password is told to use their invitation."""
from __future__ import annotations

import hashlib
import io
import re
from datetime import timedelta
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, update

from lms.db import utcnow
from lms.models import AuditEvent, Invitation, Job, Member
from tests.conftest import PASSWORD, csrf_token
from tests.smtp_server import SMTPServer
from tests.test_personnel import GOOD, _import

LINK = re.compile(r"(https?://\S+/invitation/[A-Za-z0-9_-]+)")
NO_PASSWORD = "This account has no password yet; use the invitation e-mail or ask an administrator."
NEW_PASSWORD = "lantern orchard velvet comet"


def _run_jobs(runner) -> str:
    result = runner.invoke(args=["lms", "jobs", "run"])
    assert result.exit_code == 0, result.output
    return result.output


def _outbox(app) -> dict[str, str]:
    """The invitation link each address was sent, read from the .eml files the outbox wrote."""
    links = {}
    for path in sorted((Path(app.instance_path) / "outbox").glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=email_policy.default)
        links[str(message["To"])] = LINK.search(message.get_content()).group(1)
    return links


def _badge(db, badge: str) -> Member:
    db.expire_all()
    return db.scalars(select(Member).where(Member.badge == badge)).one()


def _set_password(client, link: str, password: str = NEW_PASSWORD, confirm: str | None = None):
    path = urlsplit(link).path
    token = csrf_token(client)  # the session's token, read from the sign-in page (a used link has no form)
    return client.post(path, data={"csrf_token": token, "new_password": password,
                                   "confirm_password": confirm if confirm is not None else password})


def _sign_in(app, badge: str, password: str):
    client = app.test_client()
    response = client.post("/sign-in", data={"badge": badge, "password": password, "csrf_token": csrf_token(client)})
    return client, response


def test_cli_import_invites_and_the_link_sets_the_password_once(app, db, runner, tmp_path):
    result = _import(runner, tmp_path, GOOD, "--invite")
    assert result.exit_code == 0, result.output
    assert "Invitations queued for 4 member(s)." in result.output
    assert db.scalar(select(func.count(Job.id)).where(Job.kind == "email")) == 4
    assert "4 done" in _run_jobs(runner)
    links = _outbox(app)
    assert set(links) == {"maria.munoz@example.org", "sam.okoro@example.org", "lee.tran@example.org",
                          "ana.diaz@example.org"}
    link = links["sam.okoro@example.org"]
    assert link.startswith("http://127.0.0.1:5000/invitation/")
    token = link.rsplit("/", 1)[1]
    stored = db.scalars(select(Invitation).join(Member, Invitation.member_id == Member.id).where(Member.badge == "3002")).one()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in stored.token_hash
    assert timedelta(days=6, hours=23) < stored.expires_at - stored.created_at <= timedelta(days=7)

    client = app.test_client()
    page = client.get(urlsplit(link).path)
    assert page.status_code == 200 and "3002" in page.get_data(as_text=True)
    weak = _set_password(client, link, "password1234")
    assert weak.status_code == 400 and "too common" in weak.get_data(as_text=True)
    mismatch = _set_password(client, link, NEW_PASSWORD, "something else entirely")
    assert mismatch.status_code == 400 and "not the same" in mismatch.get_data(as_text=True)
    assert _badge(db, "3002").password_hash is None
    done = _set_password(client, link)
    assert done.status_code == 303 and done.headers["Location"].endswith("/sign-in")
    _, signed_in = _sign_in(app, "3002", NEW_PASSWORD)
    assert signed_in.status_code == 302

    reused = app.test_client().get(urlsplit(link).path)
    assert reused.status_code == 410 and "already used" in reused.get_data(as_text=True)
    again = _set_password(app.test_client(), link, "another good passphrase")
    assert again.status_code == 410
    actions = db.scalars(select(AuditEvent.action).where(AuditEvent.action.like("account.invit%"))).all()
    assert actions.count("account.invite") == 4 and actions.count("account.invitation_accept") == 1
    sends = db.scalars(select(AuditEvent).where(AuditEvent.action == "invitation.send")).all()
    assert len(sends) == 4 and all(e.outcome == "success" for e in sends)

    # A weekly re-import with --invite does not re-send open links, nor invite who has a password.
    result = _import(runner, tmp_path, GOOD, "--invite")
    assert "Invitations queued for 0 member(s)." in result.output
    assert "has an open invitation" in result.output


def test_an_expired_link_and_a_replaced_link_do_not_work(app, db, runner, tmp_path):
    _import(runner, tmp_path, GOOD, "--invite")
    _run_jobs(runner)
    links = _outbox(app)
    db.execute(update(Invitation).values(expires_at=utcnow() - timedelta(minutes=1)))
    db.commit()
    expired = app.test_client().get(urlsplit(links["maria.munoz@example.org"]).path)
    assert expired.status_code == 410 and "expired" in expired.get_data(as_text=True)
    assert _set_password(app.test_client(), links["maria.munoz@example.org"]).status_code == 410
    assert _badge(db, "3001").password_hash is None
    unknown = app.test_client().get("/invitation/not-a-real-token")
    assert unknown.status_code == 410 and "not valid" in unknown.get_data(as_text=True)
    assert db.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "account.invitation_refused")) == 3


def test_a_member_without_a_password_is_told_to_use_the_invitation(app, db, make_member, runner, tmp_path):
    _import(runner, tmp_path, GOOD)
    _, response = _sign_in(app, "3001", "any password at all")
    assert response.status_code == 400 and NO_PASSWORD in response.get_data(as_text=True)
    assert "Badge number or password is not right." not in response.get_data(as_text=True)
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "auth.sign_in")).one()
    assert event.outcome == "failure" and event.details == {"reason": "no_password", "badge": "3001"}
    # Separated members learn nothing, nor does a badge nobody holds.
    db.execute(update(Member).where(Member.badge == "3002").values(status="separated"))
    db.commit()
    for badge in ("3002", "99999"):
        page = _sign_in(app, badge, "any password at all")[1].get_data(as_text=True)
        assert "Badge number or password is not right." in page and "no password yet" not in page


def _web_upload_and_apply(client, text: str, invite: bool):
    token = csrf_token(client, "/admin/personnel/import")
    response = client.post("/admin/personnel/import", content_type="multipart/form-data",
                           data={"csrf_token": token, "file": (io.BytesIO(text.encode()), "people.csv")})
    assert response.status_code == 302
    preview = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Invite new members by e-mail" in preview
    data = {"csrf_token": csrf_token(client, response.headers["Location"])}
    if invite:
        data["invite"] = "y"
    applied = client.post(response.headers["Location"] + "/apply", data=data)
    assert applied.status_code == 302
    return client.get(applied.headers["Location"]).get_data(as_text=True)


@pytest.fixture
def admin_client(app, make_member):
    admin = make_member(first="Carmen", last="Reyes", roles=("admin",), badge="1005")
    client, response = _sign_in(app, admin.badge, PASSWORD)
    assert response.status_code == 302
    return admin, client


def test_web_import_invites_and_the_admin_resends_in_bulk(app, db, runner, admin_client):
    admin, client = admin_client
    without_email = GOOD + "3005,Noel,Nomail,,Officer,Traffic,Day,,2022-01-01,active,officer\n"
    page = _web_upload_and_apply(client, without_email, invite=True)
    assert "Invitations sent to 4 member(s); 1 could not be invited" in page
    invites = db.scalars(select(AuditEvent).where(AuditEvent.action == "account.invite")).all()
    assert len(invites) == 4 and all(e.actor_id == admin.id for e in invites)

    overview = client.get("/admin/invitations/").get_data(as_text=True)
    for name in ("Muñoz, Maria", "Okoro, Sam", "Nomail, Noel"):
        assert name in overview
    assert "none on record" in overview and overview.count("open until") == 4 and "not invited" in overview

    # Sam sets a password from the link; he is still listed until he signs in.
    _run_jobs(runner)
    _set_password(app.test_client(), _outbox(app)["sam.okoro@example.org"])
    overview = client.get("/admin/invitations/").get_data(as_text=True)
    assert "Okoro, Sam" in overview and "used" in overview
    _sign_in(app, "3002", NEW_PASSWORD)
    assert "Okoro, Sam" not in client.get("/admin/invitations/").get_data(as_text=True)

    # Re-send to everyone listed without a password: new links, the old ones stop working.
    old_link = _outbox(app)["maria.munoz@example.org"]
    token = csrf_token(client, "/admin/invitations/")
    response = client.post("/admin/invitations/send", data={"csrf_token": token, "scope": "all"})
    assert response.status_code == 303
    flashed = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Invitations sent to 3 member(s)." in flashed and "3005 Noel Nomail (no e-mail address on record)" in flashed
    assert app.test_client().get(urlsplit(old_link).path).status_code == 410
    assert db.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "account.invite")) == 7

    # Re-send to the ticked ones only.
    maria = _badge(db, "3001")
    token = csrf_token(client, "/admin/invitations/")
    client.post("/admin/invitations/send", data={"csrf_token": token, "scope": "selected",
                                                  "member_id": [str(maria.id)]})
    assert db.scalar(select(func.count(Invitation.id)).where(Invitation.member_id == maria.id)) == 3
    bad = client.post("/admin/invitations/send", data={"csrf_token": token, "member_id": ["x"]})
    assert bad.status_code == 400


def test_web_import_without_the_box_invites_nobody(db, admin_client):
    _, client = admin_client
    _web_upload_and_apply(client, GOOD, invite=False)
    assert db.scalar(select(func.count(Invitation.id))) == 0
    assert db.scalar(select(func.count(Job.id))) == 0


def test_the_invitation_arrives_through_a_real_smtp_server_with_a_working_absolute_link(app, db, runner, tmp_path):
    server = SMTPServer().start()
    try:
        app.config.update(server.config(), PUBLIC_URL="https://rollcall.elgin.example/")
        result = _import(runner, tmp_path, GOOD.splitlines()[0] + "\n" + GOOD.splitlines()[1] + "\n", "--invite")
        assert result.exit_code == 0, result.output
        assert server.recorder.count() == 0  # queued in the import's transaction, sent by the worker
        assert "1 done" in _run_jobs(runner)
        assert server.recorder.recipients() == {"maria.munoz@example.org": 1}
        _rcpts, message = server.recorder.messages[0]
    finally:
        server.stop()
    body = message.get_content()
    assert "Set your Roll Call password" in str(message["Subject"]) and "badge number 3001" in body
    link = LINK.search(body).group(1)
    assert link.startswith("https://rollcall.elgin.example/invitation/")
    client = app.test_client()
    assert client.get(urlsplit(link).path).status_code == 200
    assert _set_password(client, link).status_code == 303
    assert _sign_in(app, "3001", NEW_PASSWORD)[1].status_code == 302
