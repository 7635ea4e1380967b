"""Configuration: the defaults, and the settings read and validated once at start.

Precedence, lowest first: the defaults below, ``instance/config.py``, ``LMS_*`` environment
variables (``LMS_SECRET_KEY`` sets ``SECRET_KEY``), ``DATABASE_URL``, then the test config passed to
``create_app``. :func:`load_settings` parses every value by its declared type (the annotation, or
else the type of the default), checks it, and stops the start naming each bad variable and what it
expects. The result fills ``app.config`` (code reads ``current_app.config["NAME"]``) and is kept as a
typed :class:`Settings` object (``lms.config.settings(app).NAME``).

Adding a setting is one line in ``Defaults`` with a ``#:`` comment, for example
``REMINDER_HOUR: Annotated[int, Between(0, 23)] = 6``; a plain ``NAME = 5`` is parsed as a whole
number, ``NAME = True`` as a yes/no, and so on.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

#: The ``lms`` package folder: templates, static files, migrations and the default content live here.
PACKAGE_DIR = Path(__file__).resolve().parent
#: The source checkout (the package's parent); meaningful only when running from a checkout.
PROJECT_ROOT = PACKAGE_DIR.parent

log = logging.getLogger("lms.config")


# --- Constraints, used as ``Annotated[type, Constraint(...)]`` ---------------------------------

@dataclass(frozen=True)
class AtLeast:
    """A number no smaller than ``minimum``."""

    minimum: float

    def check(self, value: Any) -> bool:
        return value >= self.minimum

    def describe(self) -> str:
        return f"≥ {_number(self.minimum)}"


@dataclass(frozen=True)
class Between:
    """A number from ``low`` to ``high`` inclusive."""

    low: float
    high: float

    def check(self, value: Any) -> bool:
        return self.low <= value <= self.high

    def describe(self) -> str:
        return f"from {_number(self.low)} to {_number(self.high)}"


@dataclass(frozen=True)
class OneOf:
    """One of a few words (compared without regard to case; stored as declared)."""

    choices: tuple[str, ...]

    def __init__(self, *choices: str):
        object.__setattr__(self, "choices", choices)

    def normalise(self, value: str) -> str | None:
        return next((c for c in self.choices if c.lower() == value.strip().lower()), None)

    def describe(self) -> str:
        return "one of " + ", ".join(self.choices)


@dataclass(frozen=True)
class TimeZoneName:
    """An IANA time zone name such as America/Chicago."""

    def describe(self) -> str:
        return "an IANA time zone name such as America/Chicago"


@dataclass(frozen=True)
class WebAddress:
    """An absolute http(s) address with a host, such as https://training.example.org."""

    def describe(self) -> str:
        return "an absolute http:// or https:// address such as https://training.example.org"


@dataclass(frozen=True)
class DatabaseAddress:
    """An SQLAlchemy database URL."""

    def describe(self) -> str:
        return ("a database URL such as sqlite:////var/lib/rollcall/rollcall.sqlite3 or "
                "postgresql+psycopg://rollcall@db.internal/rollcall")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class Defaults:
    #: SQLAlchemy URL; None means an SQLite file in the instance folder.
    DATABASE_URL: Annotated[str | None, DatabaseAddress()] = None
    #: Signs session cookies; None keeps a random one in instance/secret_key. Always a string.
    SECRET_KEY: str | None = None
    #: Folder holding one sub-folder per policy (the package's own content pack by default).
    CONTENT_DIR = str(PACKAGE_DIR / "content")
    #: The department's local time zone: receipts show local time beside UTC.
    TIMEZONE: Annotated[str, TimeZoneName()] = "America/Chicago"
    DEPARTMENT_NAME = "Elgin Police Department"
    #: Whom members ask about their training (shown at the quiz's attempt limit and on the signing
    #: page); when both are unset, the active training coordinators on record are named.
    TRAINING_CONTACT_NAME: str | None = None
    TRAINING_CONTACT_EMAIL: str | None = None
    #: werkzeug hash method; scrypt with n=2**15, r=8, p=1 (tests lower it for speed).
    PASSWORD_HASH_METHOD = "scrypt:32768:8:1"
    #: Seed Faker personnel and the current cycle when ``python app.py`` finds an empty database.
    SEED_DEMO_ON_FIRST_RUN = True
    DEMO_PEOPLE: Annotated[int, AtLeast(0)] = 60

    #: Ranks a personnel import accepts; an empty list accepts any.
    RANKS = ["Officer", "Detective", "Sergeant", "Lieutenant", "Commander", "Deputy Chief",
             "Chief", "Records Clerk", "Telecommunicator", "Analyst", "Civilian"]
    #: Largest personnel CSV accepted (a 50,000-member roster is about 6 MB).
    IMPORT_MAX_BYTES: Annotated[int, AtLeast(1)] = 20 * 1024 * 1024
    #: Days an uploaded personnel file is kept (for preview and apply) before it is removed; the
    #: audit log keeps its SHA-256.
    PERSONNEL_UPLOAD_KEEP_DAYS: Annotated[int, AtLeast(0)] = 30

    #: Reverse proxies in front of the app (nginx: 1), so client IPs and HTTPS are recorded right.
    PROXY_COUNT: Annotated[int | None, AtLeast(0)] = None
    #: "https" marks every cookie Secure even on plain-HTTP requests (TLS ends before the app).
    PREFERRED_URL_SCHEME: Annotated[str, OneOf("http", "https")] = "http"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE: Annotated[str | None, OneOf("Lax", "Strict")] = "Lax"
    #: Secure cookies always; otherwise they are Secure whenever the request came over HTTPS
    #: (see PROXY_COUNT), and always when PREFERRED_URL_SCHEME is "https".
    SESSION_COOKIE_SECURE = False
    #: The browser cookie's lifetime (seconds in the environment).
    PERMANENT_SESSION_LIFETIME = timedelta(hours=12)
    #: Server-side sessions end after this long without a request, and this long after sign-in.
    SESSION_IDLE_MINUTES: Annotated[float, AtLeast(0.1)] = 30
    SESSION_ABSOLUTE_HOURS: Annotated[float, AtLeast(1)] = 12
    #: Minutes before the idle sign-out that a page warns and offers to stay signed in (WCAG
    #: 2.2.1); capped below SESSION_IDLE_MINUTES.
    SESSION_WARNING_MINUTES: Annotated[float, AtLeast(0)] = 2
    #: A session's last_seen_at is written at most this often (seconds).
    SESSION_TOUCH_SECONDS: Annotated[float, AtLeast(0)] = 60
    #: Consecutive failed sign-ins that lock an account, and for how long; 0 minutes locks it
    #: until an administrator unlocks it.
    LOCKOUT_THRESHOLD: Annotated[int, AtLeast(1)] = 5
    LOCKOUT_MINUTES: Annotated[int, AtLeast(0)] = 30
    #: Failed sign-ins of one badge from one IP address within the window before that badge is
    #: refused from that address (429). Counting the pair, not the address, keeps a station or a
    #: fleet of patrol cars behind one NAT gateway from locking each other out.
    SIGN_IN_ACCOUNT_IP_MAX_FAILURES: Annotated[int, AtLeast(1)] = 10
    #: Failed sign-ins of any badges from one address within the window before the whole address
    #: is refused (429): a ceiling only a scripted attack reaches.
    SIGN_IN_IP_MAX_FAILURES: Annotated[int, AtLeast(1)] = 300
    SIGN_IN_IP_WINDOW_MINUTES: Annotated[int, AtLeast(1)] = 15
    #: Roles whose members must use a second factor (an authenticator app or a passkey) when they
    #: sign in with a password: comma-separated, "" for none. They are sent to enrol after the
    #: password step and reach nothing else until then.
    MFA_REQUIRED_ROLES = "admin,hr"
    REMEMBER_COOKIE_HTTPONLY = True
    WTF_CSRF_TIME_LIMIT: int | None = None  # the session lifetime bounds the token instead
    #: Requests larger than this are refused with 413; the personnel CSV is the largest upload.
    MAX_CONTENT_LENGTH: Annotated[int, AtLeast(1)] = 21 * 1024 * 1024

    #: Reminder e-mail: "outbox" writes .eml files to instance/outbox/ (a demo sends nothing);
    #: "smtp" sends through SMTP_HOST.
    MAIL_TRANSPORT: Annotated[str, OneOf("outbox", "smtp")] = "outbox"
    MAIL_SENDER = "Roll Call <rollcall@localhost>"
    SMTP_HOST: str | None = None
    SMTP_PORT: Annotated[int, Between(1, 65535)] = 587
    SMTP_USERNAME: str | None = None
    #: Set it in the environment or instance/config.py; it is never logged or audited.
    SMTP_PASSWORD: str | None = None
    #: STARTTLS before signing in.
    SMTP_USE_TLS = True
    #: Seconds to wait for the mail server before an attempt counts as failed.
    SMTP_TIMEOUT = 30

    #: Where members and HR reach this install, e.g. ``https://rollcall.example.org``: receipts
    #: (and e-mails) carry absolute links built from it. Required when serving anywhere but on
    #: the loopback interface; ``python app.py`` on 127.0.0.1 defaults to its own address.
    PUBLIC_URL: str | None = None

    #: The department's receipt-signing key and certificate (PEM files; the certificate file may
    #: carry the issuing chain after the signer's certificate), or one PKCS#12 file instead. With
    #: none of them, ``init`` generates a self-signed pair in the instance folder
    #: (receipt-signing.pem) and receipts say their certificate is self-signed.
    SIGNING_KEY: str | None = None
    SIGNING_CERT: str | None = None
    SIGNING_PKCS12: str | None = None
    #: Passphrase of an encrypted SIGNING_KEY or of SIGNING_PKCS12; never logged or audited.
    SIGNING_PASSPHRASE: str | None = None
    #: RFC 3161 timestamp authority: receipt signatures carry its timestamp, and ``anchor``
    #: stores its token over the chain head. Unset: no timestamps, anchors are signed with the
    #: department key instead (weaker; see the README).
    TSA_URL: str | None = None
    #: Seconds to wait for the timestamp authority before signing without a timestamp.
    TSA_TIMEOUT: Annotated[int, AtLeast(1)] = 10
    #: PEM file of the timestamp authority's certificate or its CA, to report its tokens trusted.
    TSA_CERT: str | None = None
    #: Days an invitation link (to set the first password) works before it expires.
    INVITATION_DAYS: Annotated[int, AtLeast(1)] = 7

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
    #: The roster page's counts per status and unit chart for a cycle of at least
    #: ROSTER_COUNTS_KEEP_ROWS rows are kept by each worker for ROSTER_COUNTS_KEEP_SECONDS (0: always
    #: count), per filters and day: counting 50,000 members costs about 35 ms of CPU, more than the
    #: rest of the page, and paging or sorting asks for the same counts again (docs/performance.md).
    #: The rows themselves are always read live; smaller rosters are counted on every view.
    ROSTER_COUNTS_KEEP_SECONDS: Annotated[int, AtLeast(0)] = 30
    ROSTER_COUNTS_KEEP_ROWS: Annotated[int, AtLeast(0)] = 10_000
    #: Exports larger than these run as background jobs with a download page; smaller ones are
    #: built in the request. HR's receipt ZIP counts receipts, the roster XLSX and PDF count rows
    #: (a 1,000-row PDF takes about 1.5 s, docs/performance.md). The roster CSV always streams.
    EXPORT_JOB_RECEIPTS: Annotated[int, AtLeast(0)] = 1000
    EXPORT_JOB_ROWS: Annotated[int, AtLeast(0)] = 5000
    EXPORT_JOB_PDF_ROWS: Annotated[int, AtLeast(0)] = 500
    #: The most members one roster action (remind, exempt, grant attempts) may cover: each is a
    #: row, an audit event and for reminders an e-mail job, written in one transaction.
    ROSTER_ACTION_MAX_MEMBERS: Annotated[int, AtLeast(1)] = 5000
    #: The roster PDF lays out every row and holds the whole document in memory while it does (about
    #: 1.3 s and 100 MB for 1,000 rows): a larger view is refused, on the web, in jobs and on the
    #: command line, with CSV and XLSX (which stream any size) offered instead. 2,000 rows stay
    #: under about 150 MB; the bound for any size is this many rows.
    ROSTER_PDF_MAX_ROWS: Annotated[int, AtLeast(1)] = 2000
    #: Where finished exports wait (None: instance/exports); shared storage when app servers and
    #: workers run on several machines. Files are removed after EXPORT_KEEP_HOURS.
    EXPORT_DIR: str | None = None
    EXPORT_KEEP_HOURS = 24

    #: Badge-and-password sign-in. Turn it off when every member signs in through the department's
    #: identity provider; the sign-in page then offers only single sign-on.
    LOCAL_SIGN_IN = True
    #: OpenID Connect single sign-on: the issuer URL (its /.well-known/openid-configuration is read),
    #: and this app's client id and secret there. Unset issuer: no OpenID Connect.
    OIDC_ISSUER: str | None = None
    OIDC_CLIENT_ID: str | None = None
    #: Never logged or audited.
    OIDC_CLIENT_SECRET: str | None = None
    OIDC_SCOPES = "openid profile email"
    #: The ID token claim that names the member, and the personnel field it is matched to
    #: ("badge" or "email").
    OIDC_MEMBER_CLAIM = "email"
    OIDC_MEMBER_FIELD: Annotated[str, OneOf("badge", "email")] = "email"
    #: What the sign-in button says.
    OIDC_LABEL = "Sign in with the department account"
    #: SAML 2.0 single sign-on: the identity provider's metadata, as a URL or a file path.
    #: Unset: no SAML.
    SAML_IDP_METADATA: str | None = None
    #: This service provider's entity ID; unset means the URL of its metadata (/sso/saml/metadata).
    SAML_SP_ENTITY_ID: str | None = None
    #: The assertion attribute that names the member ("NameID" for the subject's NameID), and the
    #: personnel field it is matched to ("badge" or "email").
    SAML_MEMBER_ATTRIBUTE = "NameID"
    SAML_MEMBER_FIELD: Annotated[str, OneOf("badge", "email")] = "email"
    SAML_LABEL = "Sign in with the department account (SAML)"
    #: Create a member on first single sign-on when no personnel record matches (off by default:
    #: members come from the personnel import). Needs the badge as the matching field.
    SSO_CREATE_MEMBERS = False
    #: Allowed difference between this server's clock and the identity provider's, in seconds:
    #: for token lifetimes and for the fresh sign-in that completes a signature.
    SSO_CLOCK_SKEW_SECONDS: Annotated[int, AtLeast(0)] = 10

    #: /readyz also requires a recent worker heartbeat; false leaves the worker out of readiness.
    READYZ_WORKER = True

    #: Log lines: "text" (key=value) or "json" (one JSON object a line).
    LOG_FORMAT: Annotated[str, OneOf("text", "json")] = "text"
    #: Least severe level logged.
    LOG_LEVEL: Annotated[str, OneOf("DEBUG", "INFO", "WARNING", "ERROR")] = "INFO"


class Settings(Defaults):
    """The validated settings of one app: every ``Defaults`` name as an attribute of its declared
    type. Read-only; built by :func:`load_settings`."""

    def __init__(self, values: Mapping[str, Any]):
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("settings are read once at start; change the environment and restart")

    def as_config(self) -> dict[str, Any]:
        """Every setting by name, for ``app.config``."""
        return {name: getattr(self, name) for name in _declared()}


class SettingsError(ValueError):
    """One or more settings are wrong; the message names each and says what is expected."""

    def __init__(self, problems: list[str]):
        super().__init__("Roll Call cannot start; fix these settings:\n"
                         + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


#: Environment variables that are not settings but are read elsewhere (start-up, tests).
NOT_SETTINGS = {"LMS_INSTANCE_PATH", "LMS_TEST_DATABASE_URL", "LMS_TEST_REDIS_URL", "LMS_FUZZ_EXAMPLES",
                "LMS_FUZZ_CONTENT_EXAMPLES"}


def load_settings(instance_path: Path, environ: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> tuple[Settings, dict[str, Any]]:
    """Read the defaults, ``instance/config.py``, ``LMS_*`` variables, ``DATABASE_URL`` and the
    overrides; the validated settings, and any other upper-case names found (passed on unchecked
    to ``app.config``: Flask's own keys a test sets, or a setting not declared yet).

    Raises :class:`SettingsError` naming every bad value at once."""
    environ = os.environ if environ is None else environ
    declared = _declared()
    values: dict[str, Any] = {name: getattr(Defaults, name) for name in declared}
    extra: dict[str, Any] = {}
    problems: list[str] = []

    def take(name: str, raw: Any, source: str) -> None:
        if name not in declared:
            extra[name] = raw
            return
        try:
            values[name] = parse_value(declared[name], raw)
        except ValueError as exc:
            shown = raw if isinstance(raw, str) else repr(raw)
            problems.append(f"{source}: expected {exc}, got {shown!r}" if isinstance(raw, str)
                            else f"{source}: expected {exc}, got {shown}")

    config_file = Path(instance_path) / "config.py"
    if config_file.exists():
        scope: dict[str, Any] = {"__file__": str(config_file)}
        exec(compile(config_file.read_bytes(), str(config_file), "exec"), scope)  # noqa: S102 — the operator's own file
        for name, raw in scope.items():
            if name.isupper():
                take(name, raw, f"{config_file}: {name}")
    for variable, raw in sorted(environ.items()):
        if not variable.startswith("LMS_") or variable in NOT_SETTINGS:
            continue
        name = variable[len("LMS_"):]
        if name not in declared:
            log.warning("%s is not a Roll Call setting; passed on unchecked", variable)
        take(name, raw, variable)
    if environ.get("DATABASE_URL"):
        take("DATABASE_URL", environ["DATABASE_URL"], "DATABASE_URL")
    for name, raw in (overrides or {}).items():
        take(name, raw, name)
    if problems:
        raise SettingsError(problems)
    return Settings(values), extra


def settings(app) -> Settings:
    """The validated settings of ``app`` (a Flask app)."""
    return app.extensions["lms.settings"]


# --- Parsing --------------------------------------------------------------------------------------

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_WHOLE = re.compile(r"[+-]?\d+")


def parse_value(declaration: Any, raw: Any) -> Any:
    """``raw`` (a string from the environment, or a Python value from instance/config.py or a
    test) as the declared type; raises ValueError saying what was expected."""
    kind, constraints = _unwrap(declaration)
    optional = _is_optional(kind)
    if optional:
        kind = next(a for a in get_args(kind) if a is not NoneType)
    if raw is None or (optional and isinstance(raw, str) and raw.strip() == ""):
        if optional:
            return None
        raise ValueError(_expected(kind, constraints))
    value = _parse_kind(kind, raw, constraints)
    for constraint in constraints:
        if isinstance(constraint, OneOf):
            normalised = constraint.normalise(value)
            if normalised is None:
                raise ValueError(_expected(kind, constraints))
            value = normalised
        elif isinstance(constraint, TimeZoneName):
            _check_time_zone(value, constraints)
        elif isinstance(constraint, WebAddress):
            if not re.fullmatch(r"https?://[^/\s:?#]+(:\d{1,5})?(/\S*)?", value):
                raise ValueError(constraint.describe())
            value = value.rstrip("/")
        elif isinstance(constraint, DatabaseAddress):
            _check_database_url(value, constraint)
        elif not constraint.check(value):
            raise ValueError(_expected(kind, constraints))
    return value


def _parse_kind(kind: Any, raw: Any, constraints: tuple) -> Any:
    expected = _expected(kind, constraints)
    parse = _PARSERS.get(list if _origin(kind) is list else kind)
    if parse is None:
        return raw  # a type this module does not know how to parse: passed on as given
    return parse(raw, expected)


def _parse_bool(raw: Any, expected: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise ValueError(expected)


def _parse_int(raw: Any, expected: str) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and _WHOLE.fullmatch(raw.strip()):
        return int(raw.strip())
    raise ValueError(expected)


def _parse_float(raw: Any, expected: str) -> float:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(expected) from None
    else:
        raise ValueError(expected)
    if not math.isfinite(value):
        raise ValueError(expected)
    return value


def _parse_seconds(raw: Any, expected: str) -> timedelta:
    if isinstance(raw, timedelta):
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool) or isinstance(raw, str) and _WHOLE.fullmatch(raw.strip()):
        seconds = int(raw)
        if seconds > 0:
            return timedelta(seconds=seconds)
    raise ValueError(expected)


def _parse_list(raw: Any, expected: str) -> list[str]:
    if isinstance(raw, (list, tuple)) and all(isinstance(i, str) for i in raw):
        return list(raw)
    if not isinstance(raw, str):
        raise ValueError(expected)
    text = raw.strip()
    if not text.startswith("["):
        return [item.strip() for item in text.split(",") if item.strip()]
    try:
        items = json.loads(text)
    except ValueError:
        raise ValueError(expected) from None
    if isinstance(items, list) and all(isinstance(i, str) for i in items):
        return items
    raise ValueError(expected)


def _parse_str(raw: Any, expected: str) -> str:
    # Numbers from instance/config.py become text too: a secret key of digits is still a key.
    if isinstance(raw, (str, int)) and not isinstance(raw, bool):
        return str(raw)
    raise ValueError(expected)


#: How a setting's value is read from its annotated type (instance config or LMS_* text).
_PARSERS: dict[Any, Callable[[Any, str], Any]] = {
    bool: _parse_bool, int: _parse_int, float: _parse_float, timedelta: _parse_seconds, list: _parse_list,
    str: _parse_str,
}


def _expected(kind: Any, constraints: tuple) -> str:
    for constraint in constraints:
        if isinstance(constraint, (OneOf, TimeZoneName, WebAddress, DatabaseAddress)):
            return constraint.describe()
    limits = " ".join(c.describe() for c in constraints)
    base = {bool: "true or false", int: "a whole number", float: "a number",
            timedelta: "a whole number of seconds ≥ 1", str: "text"}.get(kind)
    if base is None and _origin(kind) is list:
        base = "a comma-separated list"
    base = base or f"a {getattr(kind, '__name__', kind)}"
    return f"{base} {limits}".strip()


def _check_time_zone(value: str, constraints: tuple) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(_expected(str, constraints)) from None


def _check_database_url(value: str, constraint: DatabaseAddress) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError(constraint.describe()) from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(constraint.describe())


def _declared() -> dict[str, Any]:
    """Each setting's declaration: its annotation, or else the type of its default."""
    try:
        hints = get_type_hints(Defaults, include_extras=True)
    except Exception:  # an annotation this module cannot resolve: parse that setting by its default
        hints = {}
        for name, annotation in Defaults.__annotations__.items():
            try:
                hints[name] = eval(annotation, globals()) if isinstance(annotation, str) else annotation  # noqa: S307
            except Exception:
                log.warning("setting %s: cannot read its annotation %r; parsed by its default's type", name, annotation)
    declared = {}
    for name in dir(Defaults):
        if not name.isupper():
            continue
        if name in hints:
            declared[name] = hints[name]
        else:
            default = getattr(Defaults, name)
            declared[name] = list[str] if isinstance(default, list) else \
                (str | None if default is None else type(default))
    return declared


def _unwrap(declaration: Any) -> tuple[Any, tuple]:
    if get_origin(declaration) is Annotated:
        kind, *constraints = get_args(declaration)
        return kind, tuple(constraints)
    return declaration, ()


def _is_optional(kind: Any) -> bool:
    return get_origin(kind) in (Union, UnionType) and NoneType in get_args(kind)


def _origin(kind: Any) -> Any:
    return get_origin(kind) or kind
