"""Property-based fuzzing of the personnel import, on the CLI and the web (issue 15).

Files are generated the way an HR system's export goes wrong: valid rows with one hostile cell,
control characters, e-mail lists, far-off or impossible dates, unknown supervisors, shuffled or
missing columns, bytes that are not UTF-8. Whatever the file: no traceback, no server error;
the dry run and the real run agree; a refused file changes nothing.
"""
from __future__ import annotations

import csv
import io
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from lms.models import Member
from tests.conftest import csrf_token
from tests.test_fuzz_web import nasty_text
from tests.test_personnel import HEADER

EXAMPLES = int(os.environ.get("LMS_FUZZ_EXAMPLES", "300")) // 4
COLUMNS = HEADER.strip().split(",")
GOOD_VALUES = {
    "badge": st.sampled_from(["3001", "3002", "3003", "3004", "1001"]),
    "first_name": st.sampled_from(["Maria", "Sam", "Lee", "Ana", "Jo"]),
    "last_name": st.sampled_from(["Muñoz", "Okoro", "Tran", "Diaz", "O'Neil"]),
    "email": st.sampled_from(["", "maria@example.org", "sam.okoro@example.org"]),
    "rank": st.sampled_from(["Officer", "Sergeant", ""]),
    "unit": st.sampled_from(["Patrol North", "Traffic", ""]),
    "shift": st.sampled_from(["Day", "Midnight", ""]),
    "supervisor_badge": st.sampled_from(["", "3001", "9999"]),
    "hire_date": st.sampled_from(["", "2010-04-01", "2021-02-01"]),
    "status": st.sampled_from(["active", "leave", "separated"]),
    "role": st.sampled_from(["officer", "officer;coordinator", "supervisor"]),
}


@st.composite
def personnel_files(draw) -> bytes:
    """A personnel CSV, mostly well-formed, with hostile cells, columns or bytes mixed in."""
    header = list(COLUMNS)
    if draw(st.integers(0, 9)) == 0:
        header = draw(st.permutations(COLUMNS))
    if draw(st.integers(0, 19)) == 0:
        header = header[:-1]
    rows = []
    for _ in range(draw(st.integers(0, 5))):
        row = {name: draw(GOOD_VALUES[name]) for name in COLUMNS}
        for name in draw(st.lists(st.sampled_from(COLUMNS), max_size=2)):
            row[name] = draw(nasty_text)
        rows.append([row[name] for name in header])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(header)
    writer.writerows(rows)
    data = out.getvalue().encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 19)) == 0:
        data += draw(st.binary(max_size=8))
    if draw(st.integers(0, 29)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data


def _members(app) -> int:
    from lms.db import get_database
    with get_database(app).sessionmaker() as session:
        return session.scalar(select(func.count(Member.id)))


@pytest.mark.fuzz
def test_cli_dry_run_and_import_agree_and_never_half_apply(app, runner, tmp_path):
    path = tmp_path / "people.csv"

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=personnel_files())
    def one_file(data):
        path.write_bytes(data)
        before = _members(app)
        dry = runner.invoke(args=["lms", "import-personnel", str(path), "--dry-run"])
        assert dry.exit_code in (0, 1), (data, dry.output, dry.exception)
        assert "Traceback" not in dry.output and _members(app) == before
        real = runner.invoke(args=["lms", "import-personnel", str(path)])
        assert "Traceback" not in real.output
        assert real.exit_code == dry.exit_code, (data, dry.output, real.output, real.exception)
        if real.exit_code:
            assert _members(app) == before
            assert "line" in real.output or "file" in real.output

    one_file()


@pytest.mark.fuzz
def test_web_upload_never_fails_with_a_server_error(app, client, auth, make_member):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    admin = make_member(roles=("admin",), badge="1005")
    auth.sign_in(admin.badge)
    token = csrf_token(client, "/admin/personnel/import")

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=personnel_files())
    def one_upload(data):
        before = _members(app)
        response = client.post("/admin/personnel/import", content_type="multipart/form-data",
                               data={"csrf_token": token, "file": (io.BytesIO(data), "people.csv")})
        assert response.status_code in (302, 400), (data, response.status_code)
        assert "Traceback" not in response.get_data(as_text=True)
        if response.status_code == 302:
            preview = client.get(response.headers["Location"])
            assert preview.status_code == 200
            applied = client.post(response.headers["Location"] + "/apply", data={"csrf_token": token})
            assert applied.status_code in (302, 303, 400, 409), applied.status_code
        else:
            assert _members(app) == before

    one_upload()
