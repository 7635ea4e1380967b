"""``/healthz`` and ``/readyz`` for a load balancer or an orchestrator.

``/healthz`` says the process answers (it touches nothing else); ``/readyz`` says this server can
do its work: the database answers and its schema is the one this code expects, and whatever else
``READINESS_CHECKS`` lists. Both answer JSON, 200 or 503.

They are answered before the Flask app (WSGI middleware): no session cookie is read or written,
no member loaded, nothing audited, and a probe every few seconds costs one query at most.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import Connection

from lms.db import get_database

log = logging.getLogger("lms.health")


@dataclass(frozen=True)
class CheckContext:
    """What a readiness check may use: an open database connection and the app's config."""

    connection: Connection
    config: dict
    #: The migration heads the code expects (read once per process).
    expected_revisions: frozenset[str]


#: A readiness check returns None when all is well, or a short reason it is not (shown in the
#: JSON, so never a secret or a connection string). It may raise; that counts as failing.
ReadinessCheck = Callable[[CheckContext], "str | None"]


def migrations_problem(context: CheckContext) -> str | None:
    """The database's Alembic revision is the code's head."""
    try:
        with context.connection.begin_nested():
            current = frozenset(context.connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except Exception:  # no alembic_version table: never initialised
        return "schema not created: run 'flask --app app lms init'"
    if current != context.expected_revisions:
        return (f"database at {', '.join(sorted(current)) or 'no revision'}, code expects "
                f"{', '.join(sorted(context.expected_revisions))}: run 'flask --app app lms init'")
    return None


def worker_problem(context: CheckContext) -> str | None:
    """A background worker beat recently (six heartbeats, at least a minute): without one no
    e-mail goes out and no schedule runs. READYZ_WORKER=false leaves the worker out, for a load
    balancer that should keep serving pages while the worker is restarted."""
    if not context.config.get("READYZ_WORKER", True):
        return None
    from sqlalchemy.orm import Session

    from lms.services.jobs import worker_heartbeat_age

    limit = max(60, 6 * int(context.config["JOBS_HEARTBEAT_SECONDS"]))
    with Session(bind=context.connection) as session:
        age = worker_heartbeat_age(session)
    if age is None:
        return "no worker has run: start 'flask --app lms lms worker'"
    if age.total_seconds() > limit:
        return f"no worker heartbeat for {int(age.total_seconds())} s (limit {limit} s)"
    return None


#: Every check /readyz runs after the database answered, in order. Add one with a line here.
READINESS_CHECKS: dict[str, ReadinessCheck] = {
    "migrations": migrations_problem,
    "worker": worker_problem,
}


def expected_revisions() -> frozenset[str]:
    """The migration heads of the code, read from the scripts once per process (Alembic is loaded
    only then, so starting a worker stays light)."""
    global _EXPECTED
    if _EXPECTED is None:
        from alembic.script import ScriptDirectory

        from lms.migrate import alembic_config

        _EXPECTED = frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())
    return _EXPECTED


_EXPECTED: frozenset[str] | None = None


def readiness(app: Flask) -> tuple[bool, dict[str, dict]]:
    """Run the database check, then every check in ``READINESS_CHECKS``; (all ok, per check)."""
    results: dict[str, dict] = {}
    expected = expected_revisions()
    try:
        with get_database(app).engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            results["database"] = {"ok": True}
            context = CheckContext(connection, app.config, expected)
            for name, check in READINESS_CHECKS.items():
                try:
                    problem = check(context)
                except Exception:
                    log.exception("readiness check %s failed", name)
                    problem = "check failed; see the server log"
                results[name] = {"ok": True} if problem is None else {"ok": False, "problem": problem}
            connection.rollback()
    except Exception:
        log.exception("readiness: database unreachable")
        results["database"] = {"ok": False, "problem": "database unreachable; see the server log"}
        for name in READINESS_CHECKS:
            results.setdefault(name, {"ok": False, "problem": "not checked: no database"})
    return all(r["ok"] for r in results.values()), results


class HealthMiddleware:
    """Answers GET/HEAD /healthz and /readyz; passes everything else to the app."""

    def __init__(self, wsgi_app: Callable, app: Flask):
        self.wsgi_app = wsgi_app
        self.app = app

    def __call__(self, environ: dict, start_response: Callable):
        path = environ.get("PATH_INFO")
        if path not in ("/healthz", "/readyz"):
            return self.wsgi_app(environ, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _json(start_response, "405 METHOD NOT ALLOWED", {"status": "method not allowed"},
                         environ, [("Allow", "GET, HEAD")])
        if path == "/healthz":
            return _json(start_response, "200 OK", {"status": "ok"}, environ)
        ok, checks = readiness(self.app)
        return _json(start_response, "200 OK" if ok else "503 SERVICE UNAVAILABLE",
                     {"status": "ready" if ok else "not ready", "checks": checks}, environ)


def _json(start_response: Callable, status: str, payload: dict, environ: dict,
          headers: list | None = None) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"),
                            *(headers or [])])
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def init_app(app: Flask) -> None:
    """Answer the health probes ahead of the app."""
    app.wsgi_app = HealthMiddleware(app.wsgi_app, app)
