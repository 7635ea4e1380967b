"""/healthz and /readyz: JSON, 200 or 503, no session, no audit; the readiness checks."""
from __future__ import annotations

from sqlalchemy import func, select, text

from lms import create_app, health
from lms.db import get_database
from lms.models import AuditEvent
from tests.conftest import PG_URL, TEST_CONFIG


def test_healthz_answers_without_touching_the_database(tmp_path):
    # A database that cannot be opened: the process still answers.
    app = create_app({**TEST_CONFIG, "INSTANCE_PATH": str(tmp_path),
                      "DATABASE_URL": f"sqlite:///{tmp_path}/missing-folder/x.sqlite3"})
    response = app.test_client().get("/healthz")
    get_database(app).dispose()

    assert response.status_code == 200 and response.json == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers


def test_readyz_is_ready_on_a_migrated_database_and_sets_no_cookie_and_audits_nothing(app, db, client):
    before = db.scalar(select(func.count(AuditEvent.id)))
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json == {"status": "ready", "checks": {"database": {"ok": True}, "migrations": {"ok": True},
                                                          "worker": {"ok": True}}}
    assert "Set-Cookie" not in response.headers
    assert db.scalar(select(func.count(AuditEvent.id))) == before


def test_a_signed_in_browser_probing_readyz_keeps_its_session_untouched(app, client, auth, make_member):
    member = make_member()
    auth.sign_in(member.badge)
    response = client.get("/healthz")

    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    assert client.get("/training/").status_code == 200


def test_readyz_is_503_when_the_schema_is_behind_the_code(app, client):
    with get_database(app).engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0009'"))
    try:
        response = client.get("/readyz")
    finally:
        with get_database(app).engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"),
                         {"v": next(iter(health.expected_revisions()))})

    assert response.status_code == 503 and response.json["status"] == "not ready"
    assert response.json["checks"]["database"] == {"ok": True}
    problem = response.json["checks"]["migrations"]["problem"]
    assert problem.startswith("database at 0009, code expects ") and "lms init" in problem


def test_readyz_is_503_before_init(tmp_path):
    app = create_app({**TEST_CONFIG, "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/new.sqlite3"})
    response = app.test_client().get("/readyz")
    get_database(app).dispose()

    assert response.status_code == 503
    assert response.json["checks"]["migrations"] == {
        "ok": False, "problem": "schema not created: run 'flask --app app lms init'"}


def test_readyz_is_503_when_the_database_is_unreachable_and_says_nothing_of_it(tmp_path, capsys):
    # Nothing listens on port 1; the answer must not reveal the address or the credentials.
    url = "postgresql+psycopg://rollcall:s3cret@127.0.0.1:1/rollcall" if PG_URL else \
        f"sqlite:///{tmp_path}/no-such-folder/x.sqlite3"
    app = create_app({**TEST_CONFIG, "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": url})
    response = app.test_client().get("/readyz")
    get_database(app).dispose()

    assert response.status_code == 503
    assert response.json["checks"]["database"] == {"ok": False, "problem": "database unreachable; see the server log"}
    assert response.json["checks"]["migrations"]["ok"] is False
    assert "s3cret" not in response.get_data(as_text=True) and "no-such-folder" not in response.get_data(as_text=True)
    assert "readiness: database unreachable" in capsys.readouterr().err


def test_a_readiness_check_added_in_one_line_takes_part(app, client, monkeypatch):
    monkeypatch.setitem(health.READINESS_CHECKS, "worker", lambda context: "no heartbeat for 10 minutes")
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json["checks"]["worker"] == {"ok": False, "problem": "no heartbeat for 10 minutes"}

    monkeypatch.setitem(health.READINESS_CHECKS, "worker",
                        lambda context: None if context.connection.execute(text("SELECT 1")).scalar() else "no")
    assert client.get("/readyz").status_code == 200


def test_probes_refuse_other_methods(client):
    response = client.post("/readyz")

    assert response.status_code == 405 and response.headers["Allow"] == "GET, HEAD"


def test_readyz_needs_a_recent_worker_heartbeat_when_asked_to(app, db, client):
    """A worker that never ran, or stopped beating, makes the instance not ready."""
    from datetime import timedelta

    from lms.db import utcnow
    from lms.services.jobs import beat

    app.config["READYZ_WORKER"] = True
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["worker"] == {"ok": False, "problem": "no worker has run: start 'flask --app lms lms worker'"}

    now = utcnow()
    beat(db, "host:1", now=now - timedelta(minutes=5), started_at=now - timedelta(hours=1))
    db.commit()
    stale = client.get("/readyz")
    assert stale.status_code == 503 and "no worker heartbeat for" in stale.json["checks"]["worker"]["problem"]

    beat(db, "host:1", now=utcnow(), started_at=now - timedelta(hours=1))
    db.commit()
    assert client.get("/readyz").status_code == 200
