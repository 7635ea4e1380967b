"""Roll Call: policy training and acknowledgment for police departments."""
from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from flask import Flask

from lms.config import PACKAGE_DIR, PROJECT_ROOT, load_settings


def create_app(config: dict | None = None) -> Flask:
    """Build the app: settings, logging, database, sign-in, blueprints, health checks and the
    ``lms`` command group. Raises lms.config.SettingsError, naming each bad setting."""
    instance_path = (config or {}).get("INSTANCE_PATH") or os.environ.get("LMS_INSTANCE_PATH") \
        or str(default_instance_path())
    overrides = {k: v for k, v in (config or {}).items() if k != "INSTANCE_PATH"}
    settings, extra = load_settings(Path(instance_path), os.environ, overrides)

    from lms import logs

    logs.configure(settings.LOG_FORMAT, settings.LOG_LEVEL)
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True,
                template_folder=str(PACKAGE_DIR / "templates"),
                static_folder=str(PACKAGE_DIR / "static"))
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    values = settings.as_config()
    if values.get("PUBLIC_URL"):
        from lms.services.links import check_public_url

        values["PUBLIC_URL"] = check_public_url(str(values["PUBLIC_URL"]))
    if not values["SECRET_KEY"]:
        values["SECRET_KEY"] = _persistent_secret(Path(app.instance_path) / "secret_key")
    if not values["DATABASE_URL"]:
        values["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'rollcall.sqlite3'}"
    settings = type(settings)(values)
    app.config.update(values)
    app.config.update(extra)
    app.extensions["lms.settings"] = settings

    from lms import auth, cli, db, health, jobs, transaction, web
    from lms.views import account as account_views
    from lms.views import (
        admin,
        admin_audit,
        admin_invitations,
        admin_jobs,
        admin_personnel,
        coordinator,
        coordinator_tools,
        hr,
        invitations,
        officer,
        public,
        second_factor,
        sso,
        supervisor,
    )
    from lms.views import auth as auth_views

    db.init_app(app)
    auth.init_app(app)
    web.init_app(app)
    transaction.init_app(app)  # after auth: its gate loads the member first
    jobs.init_app(app)
    for blueprint in (auth_views.bp, officer.bp, coordinator.bp, coordinator_tools.bp, hr.bp, admin.bp,
                      admin_personnel.bp, admin_audit.bp, admin_jobs.bp, public.bp, account_views.bp, sso.bp,
                      admin_invitations.bp, invitations.bp, second_factor.bp, supervisor.bp):
        app.register_blueprint(blueprint)
    second_factor.init_gate(app)
    app.cli.add_command(cli.lms)
    health.init_app(app)
    logs.init_app(app)
    return app


def default_instance_path() -> Path:
    """``instance/`` beside the checkout when running from one, else in the working directory
    (an installed package has no checkout; the service's WorkingDirectory or LMS_INSTANCE_PATH
    says where its data lives)."""
    if (PROJECT_ROOT / "pyproject.toml").exists():
        return PROJECT_ROOT / "instance"
    return Path.cwd() / "instance"


def _persistent_secret(path: Path) -> str:
    """A random secret kept in the instance folder, so sessions survive restarts and every worker
    of one install agrees on it.

    Many workers start at once: each writes a whole secret to a private temporary file and links
    it into place; the link fails for all but the first, and every worker then reads the winner's
    complete file (creating the file in place would let a reader see it still empty)."""
    if not path.exists():
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")  # mode 0600
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass  # another worker won; use its secret
        finally:
            os.unlink(temporary)
    secret = path.read_text().strip()
    if not secret:
        raise RuntimeError(f"{path} is empty: delete it (a new secret is made) or set LMS_SECRET_KEY")
    return secret
