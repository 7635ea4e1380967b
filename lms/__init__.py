"""Roll Call: policy training and acknowledgment for police departments."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask

from lms.config import PROJECT_ROOT, Defaults


def create_app(config: dict | None = None) -> Flask:
    """Build the app: config, database, sign-in, blueprints and the ``lms`` command group."""
    instance_path = (config or {}).get("INSTANCE_PATH") or os.environ.get("LMS_INSTANCE_PATH") \
        or str(PROJECT_ROOT / "instance")
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True,
                template_folder=str(PROJECT_ROOT / "templates"),
                static_folder=str(PROJECT_ROOT / "static"))
    app.config.from_object(Defaults)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("LMS")
    if os.environ.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = os.environ["DATABASE_URL"]
    if config:
        app.config.update(config)

    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _persistent_secret(Path(app.instance_path) / "secret_key")
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'rollcall.sqlite3'}"

    from lms import auth, cli, db, jobs, web
    from lms.views import admin, admin_audit, admin_jobs, admin_personnel, coordinator, coordinator_tools, hr, officer, public
    from lms.views import auth as auth_views
    from lms.views import account as account_views
    from lms.views import admin_invitations, invitations, second_factor

    db.init_app(app)
    auth.init_app(app)
    web.init_app(app)
    jobs.init_app(app)
    for blueprint in (auth_views.bp, officer.bp, coordinator.bp, coordinator_tools.bp, hr.bp, admin.bp,
                      admin_personnel.bp, admin_audit.bp, admin_jobs.bp, public.bp, account_views.bp,
                      admin_invitations.bp, invitations.bp, second_factor.bp):
        app.register_blueprint(blueprint)
    second_factor.init_gate(app)
    app.cli.add_command(cli.lms)
    return app


def _persistent_secret(path: Path) -> str:
    """A random secret kept in the instance folder, so sessions survive restarts and every worker
    of one install agrees on it."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()
