"""Start-up stays light: what every ``flask --app app lms …`` command and every web worker loads
before doing anything, and what the roster's CSV export adds to it (docs/performance.md).

Checked in a fresh interpreter, since this test session has long since imported everything."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lms.config import PROJECT_ROOT

#: Libraries only some paths need: XLSX (XlsxWriter; openpyxl only in tests), PDF (WeasyPrint), demo
#: data (Faker, seeds), migrations (Alembic), reading content/ (PyYAML), lesson pages (markdown-it),
#: signing receipts (pyHanko and its ASN.1 library), single sign-on (pysaml2, Authlib, joserfc,
#: requests), passkeys (webauthn), QR codes (segno), authenticator codes (pyotp), background jobs (Huey).
LOADED_WHEN_NEEDED = {"openpyxl", "xlsxwriter", "weasyprint", "faker", "seeds", "alembic", "yaml", "markdown_it",
                      "pyhanko", "pyhanko_certvalidator", "asn1crypto", "saml2", "authlib", "joserfc", "requests",
                      "webauthn", "segno", "pyotp", "huey"}


def _packages_loaded(code: str, instance: Path) -> set[str]:
    """The top-level packages in ``sys.modules`` after running ``code`` in a new interpreter."""
    env = {**os.environ, "LMS_INSTANCE_PATH": str(instance),
           "DATABASE_URL": f"sqlite:///{instance / 'rollcall.sqlite3'}", "LMS_SEED_DEMO_ON_FIRST_RUN": "false"}
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return {name.split(".")[0] for name in json.loads(result.stdout.splitlines()[-1])}


def test_importing_the_app_loads_no_library_only_some_paths_need(tmp_path):
    loaded = _packages_loaded("import app", tmp_path)

    assert "lms" in loaded and not loaded & LOADED_WHEN_NEEDED


def test_the_app_still_registers_every_blueprint_at_import(tmp_path):
    # Served by gunicorn as app:app, so every route must be there before the first request.
    code = ("import app\n"
            "blueprints = {'auth', 'officer', 'coordinator', 'coordinator_tools', 'hr', 'admin',"
            " 'admin_personnel', 'admin_audit', 'public', 'account'}\n"
            "endpoints = {rule.endpoint.partition('.')[0] for rule in app.app.url_map.iter_rules()}\n"
            "assert blueprints <= set(app.app.blueprints) and blueprints <= endpoints, endpoints")
    _packages_loaded(code, tmp_path)


def test_a_csv_roster_loads_neither_xlsx_nor_pdf_libraries(tmp_path):
    out = tmp_path / "roster.csv"
    code = f"""
from datetime import date
from app import app
from lms.bootstrap import init_database
from lms.cli import lms
from lms.db import get_session, utcnow
from lms.models import Member
from lms.services.cycles import create_cycle

init_database(app)
with app.app_context():
    session = get_session()
    session.add(Member(badge="1", first_name="Ada", last_name="Abbott", status="active"))
    session.flush()
    create_cycle(session, year=2031, due_date=date(2031, 12, 31), today=date(2031, 1, 2), now=utcnow())
    session.commit()
result = app.test_cli_runner().invoke(lms, ["roster", "--cycle", "2031", "--format", "csv", "--out", {str(out)!r}])
assert result.exit_code == 0, result.output
"""
    loaded = _packages_loaded(code, tmp_path)

    assert out.read_text(encoding="utf-8").startswith("badge,last_name,first_name,")
    assert not loaded & {"openpyxl", "xlsxwriter", "weasyprint", "faker", "markdown_it"}
