"""One log line per request: request id, member id (never a name, e-mail or password), method,
path without query values, status, duration; JSON lines when LMS_LOG_FORMAT=json."""
from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lms import create_app
from lms.db import get_database
from lms.logs import SANE_REQUEST_ID, request_id_from
from tests.conftest import PASSWORD, TEST_CONFIG, AuthActions


@pytest.fixture
def json_app(app, tmp_path):
    """A factory of apps on the test's database logging JSON lines; their connections are closed
    after the test."""
    made = []

    def factory(**extra):
        made.append(create_app({**TEST_CONFIG, "INSTANCE_PATH": str(tmp_path / f"json{len(made)}"),
                                "DATABASE_URL": app.config["DATABASE_URL"], "LOG_FORMAT": "json", **extra}))
        return made[-1]

    yield factory
    for json_app_made in made:
        get_database(json_app_made).dispose()


def _get(client, path: str, **kwargs):
    """GET and close the response, as a server does once it has sent it (the line is logged then)."""
    response = client.get(path, **kwargs)
    response.close()
    return response


def _request_lines(err: str) -> list[dict]:
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "lms.request"]


def test_json_lines_carry_the_request_facts_and_the_member_id_only(json_app, make_member, capsys):
    member = make_member(first="Dana", last="Whitfield")
    logging_app = json_app()
    client = logging_app.test_client()
    capsys.readouterr()

    AuthActions(client).sign_in(member.badge)
    _get(client, "/training/?q=Whitfield&page=2", headers={"X-Request-ID": "lb-7f3a.42"})
    err = capsys.readouterr().err

    lines = _request_lines(err)
    assert [(ln["method"], ln["path"], ln["status"]) for ln in lines] == [
        ("GET", "/sign-in", 200), ("POST", "/sign-in", 302), ("GET", "/training/", 200)]
    sign_in, training = lines[1], lines[2]
    assert sign_in["member_id"] == member.id and training["member_id"] == member.id
    assert lines[0]["member_id"] is None
    assert training["request_id"] == "lb-7f3a.42" and training["query"] == ["page", "q"]
    assert all(isinstance(ln["duration_ms"], float) and ln["duration_ms"] >= 0 for ln in lines)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ln["time"]) for ln in lines)
    # Nothing personal: no password, no name, no badge, no query value.
    for secret in (PASSWORD, "Dana", "Whitfield", member.badge):
        assert secret not in err


def test_the_response_carries_the_request_id_and_a_bad_one_is_replaced(client):
    assert client.get("/sign-in", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"

    replaced = client.get("/sign-in", headers={"X-Request-ID": 'x" status=200 forged'}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{12}", replaced)


def test_paths_keep_record_ids_and_drop_other_route_values(json_app, make_member, capsys):
    hr = make_member(roles=("hr",))
    logging_app = json_app()
    client = logging_app.test_client()
    AuthActions(client).sign_in(hr.badge)
    capsys.readouterr()

    _get(client, f"/hr/members/{hr.id}")
    _get(client, "/no/such/page")
    lines = _request_lines(capsys.readouterr().err)

    assert [(ln["path"], ln["status"]) for ln in lines] == [(f"/hr/members/{hr.id}", 200), ("/no/such/page", 404)]


def test_text_lines_are_key_value_and_probes_are_debug_only(app, client, capsys):
    capsys.readouterr()
    _get(client, "/sign-in")
    _get(client, "/healthz")
    err = capsys.readouterr().err

    line = next(ln for ln in err.splitlines() if " lms.request " in ln)
    assert re.fullmatch(r"\S+Z INFO lms\.request request request_id=[0-9a-f]{12} method=GET path=/sign-in "
                        r"status=200 duration_ms=\d+\.\d", line), line
    assert "/healthz" not in err


def test_probes_are_logged_at_debug_level(json_app, capsys):
    logging_app = json_app(LOG_LEVEL="DEBUG")
    capsys.readouterr()
    _get(logging_app.test_client(), "/healthz")

    lines = _request_lines(capsys.readouterr().err)
    assert [(ln["level"], ln["path"], ln["status"]) for ln in lines] == [("DEBUG", "/healthz", 200)]


def test_a_server_error_is_logged_with_the_request_id_the_page_shows(json_app, capsys):
    logging_app = json_app()
    logging_app.config["PROPAGATE_EXCEPTIONS"] = False

    @logging_app.get("/boom")
    def boom():
        raise RuntimeError("kaboom")

    capsys.readouterr()
    response = _get(logging_app.test_client(), "/boom", headers={"X-Request-ID": "req-500"})
    records = [json.loads(ln) for ln in capsys.readouterr().err.splitlines() if ln.startswith("{")]

    assert response.status_code == 500 and "req-500" in response.get_data(as_text=True)
    error = next(r for r in records if r["level"] == "ERROR")
    assert error["request_id"] == "req-500" and "kaboom" in error["exception"]
    assert records[-1]["logger"] == "lms.request" and records[-1]["status"] == 500


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_any_request_id_header_yields_a_sane_id(header):
    result = request_id_from(header)

    assert SANE_REQUEST_ID.fullmatch(result)
    assert result == header or not SANE_REQUEST_ID.fullmatch(header)
