"""Fixtures: an app on a fresh database per test (SQLite, or PostgreSQL when
LMS_TEST_DATABASE_URL is set), a client, a CLI runner, and member factories."""
from __future__ import annotations

import os
import re
import shutil
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from lms import create_app
from lms.bootstrap import init_database
from lms.config import PACKAGE_DIR
from lms.db import get_database, utcnow
from lms.services.accounts import create_or_grant
from lms.services.clock import local_date
from lms.services.content import load_packs, sync_content
from lms.services.cycles import create_cycle

PG_URL = os.environ.get("LMS_TEST_DATABASE_URL")
PASSWORD = "correct horse battery staple"
TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret",
    # Cheap scrypt so hundreds of sign-ins stay fast; production uses n=2**15.
    "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
    "SEED_DEMO_ON_FIRST_RUN": False,
    # No worker runs beside most tests; tests/test_health.py turns the worker check on.
    "READYZ_WORKER": False,
    # Off for the suite, whose administrators and HR sign in with a password alone;
    # tests/test_second_factor.py turns it on.
    "MFA_REQUIRED_ROLES": "",
    "CONTENT_DIR": str(PACKAGE_DIR / "content"),
}
CONTENT_TABLES = ["question_option", "question", "lesson", "policy_version", "policy"]
# Content is loaded once per run on PostgreSQL; a test that changes it is detected by this
# fingerprint and the content is reloaded for the next test.
CONTENT_FINGERPRINT = text("""
    SELECT (SELECT count(*) FROM policy),
           (SELECT md5(coalesce(string_agg(id::text || text_sha256 || pass_mark || draw_size || max_attempts,
                                           ',' ORDER BY id), '')) FROM policy_version),
           (SELECT md5(coalesce(string_agg(id::text || slug || title || body_markdown || retired,
                                           ',' ORDER BY id), '')) FROM lesson),
           (SELECT md5(coalesce(string_agg(id::text || key || topic || prompt || scenario || retired,
                                           ',' ORDER BY id), '')) FROM question),
           (SELECT md5(coalesce(string_agg(id::text || question_id::text || position || text || correct || why,
                                           ',' ORDER BY id), '')) FROM question_option)
""")


def pytest_addoption(parser):
    parser.addoption("--screenshots", action="store_true", default=False,
                     help="browser tests write screenshots of the main pages to docs/screenshots/")


@pytest.fixture(scope="session")
def database_template(tmp_path_factory):
    """Build the schema and load content once per run; each test starts from a copy of it."""
    if PG_URL:
        app = create_app({**TEST_CONFIG, "DATABASE_URL": PG_URL,
                          "INSTANCE_PATH": str(tmp_path_factory.mktemp("instance"))})
        with get_database(app).engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        init_database(app)
        with get_database(app).engine.connect() as conn:
            fingerprint = tuple(conn.execute(CONTENT_FINGERPRINT).one())
        get_database(app).dispose()
        return PG_URL, fingerprint
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    app = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{path}",
                      "INSTANCE_PATH": str(path.parent)})
    init_database(app)
    with get_database(app).engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    get_database(app).dispose()
    return str(path)


def _runtime_tables(conn) -> list[str]:
    """Every table but the content tables and Alembic's, read from the database itself so a new
    table can never be left out of the reset."""
    names = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars()
    return sorted(n for n in names if n not in CONTENT_TABLES and n != "alembic_version")


def _reset_postgres(app, fingerprint) -> None:
    """Empty the runtime tables (triggers, record guards included, are off for this session
    only) and reload content only if a test changed it."""
    database = get_database(app)
    with database.engine.begin() as conn:
        # A test that failed with a session still open leaves its transaction idle, holding locks
        # the reset waits for: end it, so one failure is reported rather than hanging the run.
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                          " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"))
        conn.execute(text("SET session_replication_role = replica"))
        for table in _runtime_tables(conn):
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("INSERT INTO chain_head (id, sequence, last_hash) VALUES (1, 0, :h)"),
                     {"h": "0" * 64})
        changed = tuple(conn.execute(CONTENT_FINGERPRINT).one()) != fingerprint
        if changed:
            conn.execute(text(f"TRUNCATE {', '.join(CONTENT_TABLES)} RESTART IDENTITY CASCADE"))
        conn.execute(text("SET session_replication_role = origin"))
    if changed:
        with database.sessionmaker() as session:
            sync_content(session, load_packs(Path(app.config["CONTENT_DIR"])))
            session.commit()


@pytest.fixture(scope="session")
def receipt_signing_pem(tmp_path_factory) -> Path:
    """One generated self-signed receipt-signing pair for the run: generating RSA keys for every
    test would cost more than the tests."""
    from lms.services.receipt_signature import ensure_default_identity

    return ensure_default_identity(tmp_path_factory.mktemp("signing"), "Test PD")


@pytest.fixture
def app(database_template, receipt_signing_pem, tmp_path):
    """An app on its own fresh database, its instance folder holding the run's signing pair."""
    instance = tmp_path / "instance"
    instance.mkdir()
    shutil.copy(receipt_signing_pem, instance / receipt_signing_pem.name)
    if PG_URL:
        app = create_app({**TEST_CONFIG, "DATABASE_URL": PG_URL, "INSTANCE_PATH": str(instance)})
        try:
            _reset_postgres(app, database_template[1])
        except Exception:
            get_database(app).dispose()
            raise
    else:
        db_path = tmp_path / "test.sqlite3"
        shutil.copy(database_template, db_path)
        app = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{db_path}",
                          "INSTANCE_PATH": str(instance)})
    yield app
    get_database(app).dispose()


@pytest.fixture
def db(app):
    """A session on the test database. No app context is held open: requests made during the
    test must each get their own, as they do in production."""
    session = get_database(app).sessionmaker()
    yield session
    session.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_member(app, db):
    """Create a member with a password and roles; returns the member."""
    counter = iter(range(500, 10_000))

    def factory(first="Alex", last="Rivera", roles=("officer",), badge=None, unit="Patrol North",
                rank="Officer", shift="Day", password=PASSWORD, status="active"):
        badge = badge or str(next(counter))
        member = None
        for role in roles:
            member, _ = create_or_grant(db, badge=badge, first_name=first, last_name=last, role=role,
                                        unit=unit, rank=rank, shift=shift, password=password,
                                        hash_method=app.config["PASSWORD_HASH_METHOD"])
        member.status = status
        db.commit()
        return member

    return factory


@pytest.fixture
def open_cycle(app, db):
    """Open this year's cycle for every policy, due in 30 days, for the members that exist."""

    def factory(due_in_days=30, **kwargs):
        now = utcnow()
        today = local_date(now, app.config["TIMEZONE"])
        cycle = create_cycle(db, year=today.year, due_date=today + timedelta(days=due_in_days),
                             today=today, now=now, **kwargs)
        db.commit()
        return cycle

    return factory


CSRF_RE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def csrf_token(client, path: str = "/sign-in") -> str:
    """The CSRF token of the client's session, read from a page as a browser would."""
    html = client.get(path).get_data(as_text=True)
    match = CSRF_RE.search(html)
    assert match, f"no csrf_token on {path}"
    return match.group(1)


def wrong_code_for(totp) -> str:
    """A six-digit code the app shows at no step near now (a fixed one would match, once in a while)."""
    now = time.time()
    valid = {totp.at(now + drift) for drift in range(-90, 91, 30)}
    return next(code for code in ("000000", "111111", "222222") if code not in valid)


class AuthActions:
    def __init__(self, client):
        self.client = client

    def sign_in(self, badge: str, password: str = PASSWORD):
        token = csrf_token(self.client)
        return self.client.post("/sign-in", data={"badge": badge, "password": password, "csrf_token": token})

    def sign_out(self):
        token = csrf_token(self.client, "/verify")
        return self.client.post("/sign-out", data={"csrf_token": token})


@pytest.fixture
def auth(client):
    return AuthActions(client)
