"""Signing in and out, role guards, CSRF and response headers."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from lms.models import AuditEvent
from tests.conftest import PASSWORD, csrf_token


def test_sign_in_lands_on_role_home(client, auth, make_member):
    officer = make_member()
    response = auth.sign_in(officer.badge)
    assert response.status_code == 302 and response.headers["Location"] == "/training/"
    hr = make_member(first="Pat", last="Lee", roles=("hr",), badge="900")
    auth.sign_out()
    assert auth.sign_in(hr.badge).headers["Location"] == "/hr/"


@pytest.mark.parametrize("role,home", [("coordinator", "/coordinator/"), ("hr", "/hr/"), ("admin", "/admin/")])
def test_staff_in_training_land_on_their_work_page(client, auth, make_member, role, home):
    """A coordinator, HR member or administrator who is also an officer in training lands on the
    page of their job, not on "My training"."""
    staff = make_member(first="Pat", last="Lee", roles=("officer", role), badge="901")
    assert auth.sign_in(staff.badge).headers["Location"] == home


@pytest.mark.parametrize("badge,password", [("500", "wrong password entirely"), ("99999", PASSWORD), ("", "")])
def test_failed_sign_in_does_not_say_which_part_was_wrong(client, auth, db, make_member, badge, password):
    make_member(badge="500")
    response = auth.sign_in(badge, password)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    if badge:
        assert "Badge number or password is not right." in page
        events = db.scalars(select(AuditEvent).where(AuditEvent.action == "auth.sign_in")).all()
        assert [e.outcome for e in events] == ["failure"]
        assert password not in str(events[0].details)
    else:
        assert "Enter your badge number." in page
    assert client.get("/training/").status_code == 302


def test_separated_member_cannot_sign_in(client, auth, make_member):
    member = make_member(status="separated")
    assert auth.sign_in(member.badge).status_code == 400


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get("/training/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in?next=")
    assert client.get("/").headers["Location"] == "/sign-in"


PAGES = ("/training/", "/training/history", "/coordinator/", "/hr/", "/admin/")


@pytest.mark.parametrize("roles,allowed", [
    (("officer",), {"/training/", "/training/history"}),
    (("coordinator",), {"/coordinator/"}),
    (("hr",), {"/hr/"}),
    (("admin",), {"/admin/", "/coordinator/"}),
    (("officer", "hr"), {"/training/", "/training/history", "/hr/"}),
])
def test_each_role_reaches_only_its_pages(client, auth, make_member, roles, allowed):
    member = make_member(roles=roles)
    auth.sign_in(member.badge)
    for path in PAGES:
        assert client.get(path).status_code == (200 if path in allowed else 403), path


def test_post_without_csrf_token_is_refused(client, auth, make_member):
    member = make_member()
    response = client.post("/sign-in", data={"badge": member.badge, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/training/").status_code == 302


def test_sign_out_ends_the_session(client, auth, db, make_member):
    member = make_member()
    auth.sign_in(member.badge)
    assert client.get("/training/").status_code == 200
    auth.sign_out()
    assert client.get("/training/").status_code == 302
    actions = db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["auth.sign_in", "auth.sign_out"]


def test_next_parameter_cannot_leave_the_site(app, make_member):
    member = make_member()
    for target, lands in (("//evil.example/", "/training/"), ("https://evil.example/", "/training/"),
                          ("javascript:alert(1)", "/training/"), ("/training/history", "/training/history")):
        client = app.test_client()
        token = csrf_token(client)
        response = client.post(f"/sign-in?next={target}",
                               data={"badge": member.badge, "password": PASSWORD, "csrf_token": token})
        assert response.headers["Location"] == lands, target


def test_security_headers(client, auth, make_member):
    response = client.get("/sign-in")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"]
    auth.sign_in(make_member().badge)
    assert client.get("/training/").headers["Cache-Control"] == "no-store"
    cookie = client.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax"


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404 and "Not found" in response.get_data(as_text=True)
