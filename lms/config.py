"""Configuration defaults.

Precedence, lowest first: these defaults, ``instance/config.py``, ``LMS_*`` environment variables
(``LMS_SECRET_KEY`` sets ``SECRET_KEY``), ``DATABASE_URL``, then the test config passed to
``create_app``.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Defaults:
    #: SQLAlchemy URL; None means an SQLite file in the instance folder.
    DATABASE_URL: str | None = None
    #: Folder holding one sub-folder per policy.
    CONTENT_DIR = str(PROJECT_ROOT / "content")
    #: The department's local time zone: receipts show local time beside UTC.
    TIMEZONE = "America/Chicago"
    DEPARTMENT_NAME = "Elgin Police Department"
    #: Whom members ask about their training (shown at the quiz's attempt limit and on the signing
    #: page); when both are unset, the active training coordinators on record are named.
    TRAINING_CONTACT_NAME: str | None = None
    TRAINING_CONTACT_EMAIL: str | None = None
    #: werkzeug hash method; scrypt with n=2**15, r=8, p=1 (tests lower it for speed).
    PASSWORD_HASH_METHOD = "scrypt:32768:8:1"
    #: Seed Faker personnel and the current cycle when ``python app.py`` finds an empty database.
    SEED_DEMO_ON_FIRST_RUN = True
    DEMO_PEOPLE = 60

    #: Ranks a personnel import accepts; an empty list accepts any.
    RANKS = ["Officer", "Detective", "Sergeant", "Lieutenant", "Commander", "Deputy Chief",
             "Chief", "Records Clerk", "Telecommunicator", "Analyst", "Civilian"]
    #: Largest personnel CSV accepted (a 50,000-member roster is about 6 MB).
    IMPORT_MAX_BYTES = 20 * 1024 * 1024

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    #: Secure cookies always; otherwise they are Secure whenever the request came over HTTPS
    #: (see PROXY_COUNT), and always when PREFERRED_URL_SCHEME is "https".
    SESSION_COOKIE_SECURE = False
    PERMANENT_SESSION_LIFETIME = timedelta(hours=12)
    #: Server-side sessions end after this long without a request, and this long after sign-in.
    SESSION_IDLE_MINUTES = 30
    SESSION_ABSOLUTE_HOURS = 12
    #: Minutes before the idle sign-out that a page warns and offers to stay signed in (WCAG
    #: 2.2.1); capped below SESSION_IDLE_MINUTES.
    SESSION_WARNING_MINUTES = 2
    #: A session's last_seen_at is written at most this often (seconds).
    SESSION_TOUCH_SECONDS = 60
    #: Consecutive failed sign-ins that lock an account, and for how long; 0 minutes locks it
    #: until an administrator unlocks it.
    LOCKOUT_THRESHOLD = 5
    LOCKOUT_MINUTES = 30
    #: Failed sign-ins from one IP address within the window before that address is refused (429).
    SIGN_IN_IP_MAX_FAILURES = 20
    SIGN_IN_IP_WINDOW_MINUTES = 15
    REMEMBER_COOKIE_HTTPONLY = True
    WTF_CSRF_TIME_LIMIT = None  # the session lifetime bounds the token instead
    #: Requests larger than this are refused with 413; the personnel CSV is the largest upload.
    MAX_CONTENT_LENGTH = 21 * 1024 * 1024

    #: Reminder e-mail: "outbox" writes .eml files to instance/outbox/ (a demo sends nothing);
    #: "smtp" sends through SMTP_HOST.
    MAIL_TRANSPORT = "outbox"
    MAIL_SENDER = "Roll Call <rollcall@localhost>"
    SMTP_HOST: str | None = None
    SMTP_PORT = 587
    SMTP_USERNAME: str | None = None
    #: Set it in the environment or instance/config.py; it is never logged or audited.
    SMTP_PASSWORD: str | None = None
    #: STARTTLS before signing in.
    SMTP_USE_TLS = True
