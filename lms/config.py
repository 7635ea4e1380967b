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
    #: A session's last_seen_at is written at most this often (seconds).
    SESSION_TOUCH_SECONDS = 60
    #: Consecutive failed sign-ins that lock an account, and for how long; 0 minutes locks it
    #: until an administrator unlocks it.
    LOCKOUT_THRESHOLD = 5
    LOCKOUT_MINUTES = 30
    #: Failed sign-ins of one badge from one IP address within the window before that badge is
    #: refused from that address (429). Counting the pair, not the address, keeps a station or a
    #: fleet of patrol cars behind one NAT gateway from locking each other out.
    SIGN_IN_ACCOUNT_IP_MAX_FAILURES = 10
    #: Failed sign-ins of any badges from one address within the window before the whole address
    #: is refused (429): a ceiling only a scripted attack reaches.
    SIGN_IN_IP_MAX_FAILURES = 300
    SIGN_IN_IP_WINDOW_MINUTES = 15
    #: Roles whose members must use a second factor (an authenticator app): comma-separated, ""
    #: for none. They are sent to enrol after the password step and reach nothing else until then.
    MFA_REQUIRED_ROLES = "admin,hr"
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
    #: Seconds to wait for the mail server before an attempt counts as failed.
    SMTP_TIMEOUT = 30

    #: The address members use to reach Roll Call: e-mails link to it (no trailing slash needed).
    PUBLIC_URL = "http://127.0.0.1:5000"
    #: Days an invitation link (to set the first password) works before it expires.
    INVITATION_DAYS = 7

    #: Background jobs (docs/jobs.md). None: Huey keeps its queue in instance/jobs.sqlite3 (one
    #: machine); "redis://host:6379/0": Redis, for workers on several machines.
    JOBS_URL: str | None = None
    #: The queue's name on the broker; distinct names keep several installs on one Redis apart.
    JOBS_QUEUE_NAME = "rollcall"
    #: Worker threads per ``lms worker`` process.
    JOBS_WORKER_THREADS = 2
    #: Attempts per job before it is shown to the administrator as failed.
    JOBS_MAX_ATTEMPTS = 5
    #: Wait before the second attempt, doubled for each further one (60 s, 2, 4, 8 min…).
    JOBS_RETRY_SECONDS = 60
    #: A job running this long is presumed abandoned by a dead worker and run again.
    JOBS_LEASE_SECONDS = 600
    #: How often a worker records its heartbeat, and looks for due jobs it was not woken for.
    JOBS_HEARTBEAT_SECONDS = 10
    JOBS_POLL_SECONDS = 10
    #: ``python app.py`` starts a worker process beside the development server.
    JOBS_WORKER_WITH_APP = True
    #: Scheduled reminders go out from this local hour on (0-23).
    REMINDER_HOUR = 8
    #: Exports larger than these run as background jobs with a download page; smaller ones are
    #: built in the request. HR's receipt ZIP counts receipts, the roster XLSX and PDF count rows
    #: (a 1,000-row PDF takes about 1.5 s, docs/performance.md). The roster CSV always streams.
    EXPORT_JOB_RECEIPTS = 1000
    EXPORT_JOB_ROWS = 5000
    EXPORT_JOB_PDF_ROWS = 500
    #: Where finished exports wait (None: instance/exports); shared storage when app servers and
    #: workers run on several machines. Files are removed after EXPORT_KEEP_HOURS.
    EXPORT_DIR: str | None = None
    EXPORT_KEEP_HOURS = 24
