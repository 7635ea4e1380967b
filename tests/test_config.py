"""Settings are read and validated once at start: a bad value stops the start naming the variable
and what it expects; the secret key is always a string; the secret file survives many workers
starting at once."""
from __future__ import annotations

import multiprocessing
import os
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import get_type_hints

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from lms import create_app
from lms.config import PROJECT_ROOT, Defaults, SettingsError, load_settings, parse_value, settings
from lms.db import get_database
from tests.conftest import PASSWORD, TEST_CONFIG


def _load(tmp_path: Path, **env: str):
    return load_settings(tmp_path, {f"LMS_{k}": v for k, v in env.items()})[0]


def test_environment_values_are_parsed_by_their_declared_type(tmp_path):
    loaded = _load(tmp_path, LOCKOUT_THRESHOLD="7", SMTP_USE_TLS="no", SESSION_IDLE_MINUTES="2.5",
                   RANKS="Officer, Sergeant", PROXY_COUNT="1", MAIL_TRANSPORT="SMTP",
                   PERMANENT_SESSION_LIFETIME="3600", TIMEZONE="Europe/Berlin", LOG_FORMAT="json")

    assert loaded.LOCKOUT_THRESHOLD == 7 and loaded.SMTP_USE_TLS is False
    assert loaded.SESSION_IDLE_MINUTES == 2.5 and loaded.RANKS == ["Officer", "Sergeant"]
    assert loaded.PROXY_COUNT == 1 and loaded.MAIL_TRANSPORT == "smtp"
    assert loaded.PERMANENT_SESSION_LIFETIME == timedelta(hours=1)
    assert loaded.TIMEZONE == "Europe/Berlin" and loaded.LOG_FORMAT == "json"
    assert loaded.DEPARTMENT_NAME == Defaults.DEPARTMENT_NAME  # untouched settings keep their default


@pytest.mark.parametrize("variable, value, message", [
    ("LOCKOUT_THRESHOLD", "five", "LMS_LOCKOUT_THRESHOLD: expected a whole number ≥ 1, got 'five'"),
    ("LOCKOUT_THRESHOLD", "0", "LMS_LOCKOUT_THRESHOLD: expected a whole number ≥ 1, got '0'"),
    ("LOCKOUT_MINUTES", "-1", "LMS_LOCKOUT_MINUTES: expected a whole number ≥ 0, got '-1'"),
    ("SMTP_PORT", "70000", "LMS_SMTP_PORT: expected a whole number from 1 to 65535, got '70000'"),
    ("SMTP_USE_TLS", "maybe", "LMS_SMTP_USE_TLS: expected true or false, got 'maybe'"),
    ("TIMEZONE", "Central", "LMS_TIMEZONE: expected an IANA time zone name such as America/Chicago, got 'Central'"),
    ("MAIL_TRANSPORT", "pigeon", "LMS_MAIL_TRANSPORT: expected one of outbox, smtp, got 'pigeon'"),
    ("LOG_FORMAT", "xml", "LMS_LOG_FORMAT: expected one of text, json, got 'xml'"),
    ("SESSION_IDLE_MINUTES", "nan", "LMS_SESSION_IDLE_MINUTES: expected a number ≥ 0.1, got 'nan'"),
    ("PERMANENT_SESSION_LIFETIME", "12h", "LMS_PERMANENT_SESSION_LIFETIME: expected a whole number of seconds ≥ 1, got '12h'"),
])
def test_a_bad_value_names_the_variable_and_what_it_expects(tmp_path, variable, value, message):
    with pytest.raises(SettingsError) as error:
        _load(tmp_path, **{variable: value})

    assert error.value.problems == [message]


def test_every_bad_value_is_reported_at_once_and_a_bad_database_url_too(tmp_path):
    with pytest.raises(SettingsError) as error:
        load_settings(tmp_path, {"LMS_LOCKOUT_THRESHOLD": "x", "LMS_DEMO_PEOPLE": "-3",
                                 "DATABASE_URL": "mysql://db/rollcall"})

    assert [p.split(":")[0] for p in error.value.problems] == ["LMS_DEMO_PEOPLE", "LMS_LOCKOUT_THRESHOLD",
                                                               "DATABASE_URL"]
    assert "expected a database URL such as" in error.value.problems[2]


def test_instance_config_file_is_validated_and_named(tmp_path):
    (tmp_path / "config.py").write_text("LOCKOUT_THRESHOLD = 'five'\nDEPARTMENT_NAME = 'Aurora PD'\n")

    with pytest.raises(SettingsError) as error:
        load_settings(tmp_path, {})
    assert error.value.problems == [f"{tmp_path / 'config.py'}: LOCKOUT_THRESHOLD: expected a whole number ≥ 1, got 'five'"]

    (tmp_path / "config.py").write_text("LOCKOUT_THRESHOLD = 3\nDEPARTMENT_NAME = 'Aurora PD'\n")
    loaded, _ = load_settings(tmp_path, {"LMS_LOCKOUT_THRESHOLD": "4"})
    assert loaded.DEPARTMENT_NAME == "Aurora PD" and loaded.LOCKOUT_THRESHOLD == 4  # the environment wins


def test_the_app_config_holds_the_validated_values_under_the_same_names(tmp_path, monkeypatch):
    monkeypatch.setenv("LMS_LOCKOUT_THRESHOLD", "9")
    monkeypatch.setenv("LMS_SOMETHING_NEW", "kept")
    app = create_app({**TEST_CONFIG, "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})

    assert app.config["LOCKOUT_THRESHOLD"] == 9 == settings(app).LOCKOUT_THRESHOLD
    assert app.config["SOMETHING_NEW"] == "kept"  # not declared yet: passed on unchecked
    with pytest.raises(AttributeError):
        settings(app).LOCKOUT_THRESHOLD = 3
    get_database(app).dispose()


def test_a_bad_setting_stops_python_app_py_with_the_message_alone(tmp_path):
    env = {**os.environ, "LMS_INSTANCE_PATH": str(tmp_path), "LMS_LOCKOUT_THRESHOLD": "five"}
    result = subprocess.run([sys.executable, "app.py"], cwd=PROJECT_ROOT, env=env, capture_output=True,
                            text=True, timeout=60)

    assert result.returncode == 1
    assert "LMS_LOCKOUT_THRESHOLD: expected a whole number ≥ 1, got 'five'" in result.stderr
    assert "Traceback" not in result.stderr


@given(st.integers(min_value=1, max_value=10**12))
@hypothesis_settings(max_examples=30, deadline=None)
def test_whole_numbers_round_trip_through_the_environment(number):
    declaration = get_type_hints(Defaults, include_extras=True)["LOCKOUT_THRESHOLD"]

    assert parse_value(declaration, str(number)) == number
    assert parse_value(declaration, f" {number} ") == number


@given(st.text(alphabet="0123456789", min_size=1, max_size=64))
@hypothesis_settings(max_examples=30, deadline=None)
def test_a_secret_key_is_always_text(digits):
    loaded = load_settings(Path("/nonexistent"), {"LMS_SECRET_KEY": digits})[0]

    assert loaded.SECRET_KEY == digits


def test_an_all_digit_secret_key_signs_sessions(tmp_path, monkeypatch, make_member, app):
    # Before: LMS_SECRET_KEY=12345678 became the number 12345678 and every page answered 500.
    member = make_member()
    monkeypatch.setenv("LMS_SECRET_KEY", "12345678901234567890")
    config = {k: v for k, v in TEST_CONFIG.items() if k != "SECRET_KEY"}
    digits_app = create_app({**config, "INSTANCE_PATH": str(tmp_path / "i"), "DATABASE_URL": app.config["DATABASE_URL"]})
    client = digits_app.test_client()

    assert digits_app.config["SECRET_KEY"] == "12345678901234567890"
    assert client.get("/sign-in").status_code == 200
    from tests.conftest import AuthActions

    response = AuthActions(client).sign_in(member.badge, PASSWORD)
    assert response.status_code == 302 and client.get("/training/").status_code == 200
    get_database(digits_app).dispose()


def _start_worker(instance: str, barrier, results) -> None:
    barrier.wait()
    try:
        app = create_app({"INSTANCE_PATH": instance, "SEED_DEMO_ON_FIRST_RUN": False})
        results.put(app.config["SECRET_KEY"])
    except Exception as exc:  # reported to the test, which fails on it
        results.put(f"error: {exc!r}")


def test_many_workers_starting_at_once_agree_on_one_secret(tmp_path, monkeypatch):
    monkeypatch.delenv("LMS_SECRET_KEY", raising=False)
    context = multiprocessing.get_context("fork")
    workers = 40
    barrier, results = context.Barrier(workers), context.Queue()
    processes = [context.Process(target=_start_worker, args=(str(tmp_path), barrier, results))
                 for _ in range(workers)]
    for process in processes:
        process.start()
    secrets = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)

    assert all(p.exitcode == 0 for p in processes)
    assert len(set(secrets)) == 1 and len(secrets[0]) == 64, set(secrets)
    secret_file = tmp_path / "secret_key"
    assert secret_file.read_text() == secrets[0]
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".secret_key")] == []
