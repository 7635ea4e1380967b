"""The administrator reads, filters and exports the audit log."""
from __future__ import annotations

import csv
import io

from sqlalchemy import select

from lms.models import AuditEvent
from tests.conftest import PASSWORD


def test_admin_filters_and_exports_the_log(client, auth, db, make_member):
    officer = make_member(badge="501")
    admin = make_member(first="Carmen", last="Reyes", roles=("admin",), badge="1005")
    auth.sign_in(officer.badge, "not the password at all")
    auth.sign_in(officer.badge)
    auth.sign_out()
    auth.sign_in(admin.badge)

    page = client.get("/admin/audit/?action=auth.sign_in&outcome=failure").get_data(as_text=True)
    assert "1 event." in page and "auth.sign_in" in page and "failure" in page
    page = client.get("/admin/audit/?actor=501").get_data(as_text=True)
    assert "2 events." in page  # the officer's sign-in and sign-out
    assert client.get("/admin/audit/?since=2030-01-02&until=2030-01-01").status_code == 400

    response = client.get("/admin/audit/export.csv?action=auth")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert response.mimetype == "text/csv"
    assert [r["action"] for r in rows] == ["auth.sign_in", "auth.sign_in", "auth.sign_out", "auth.sign_in"]
    assert rows[1]["actor_badge"] == "501" and rows[0]["outcome"] == "failure"
    assert all(PASSWORD not in r["details"] and "not the password" not in r["details"] for r in rows)
    db.expire_all()
    reads = db.scalars(select(AuditEvent.action).where(AuditEvent.action.like("audit.%"))).all()
    assert sorted(reads) == ["audit.export", "audit.view", "audit.view"]  # the refused filter read nothing


def test_only_admins_read_the_log(client, auth, make_member):
    member = make_member(roles=("officer", "coordinator", "hr"))
    auth.sign_in(member.badge)
    assert client.get("/admin/audit/").status_code == 403
    assert client.get("/admin/audit/export.csv").status_code == 403
