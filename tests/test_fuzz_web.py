"""Property-based fuzzing of every route, form field and query parameter (issue 15).

Hypothesis picks a role, a route, ids (real ones, missing ones, ones no column can hold) and form
or query values from a pool of hostile text (control characters, NUL, digits of other scripts,
far-off dates, very long strings, lists). Whatever it sends: no response is a server error, no
page shows a traceback, and a refused request (4xx) leaves every table as it was — apart from the
audit log and session rows, which record refusals on purpose.

``LMS_FUZZ_EXAMPLES`` sets how many requests each run makes (CI sets it high; see .ci/run).
"""
from __future__ import annotations

import os
import re
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from lms.db import Base, get_database
from tests.conftest import csrf_token
from tests.test_authorization_matrix import EXPECTED, ROLES, _signed_in_client, world  # noqa: F401 (fixture)

EXAMPLES = int(os.environ.get("LMS_FUZZ_EXAMPLES", "300"))
#: Written by refused requests on purpose: failed sign-ins, refused voids and the like are audited,
#: and a session records when it was last used.
WRITTEN_ON_REFUSAL = {"audit_event", "sign_in_session"}
#: Routes whose success would end the fuzzing session's sign-in rather than test input handling.
SKIPPED = {"auth.sign_out", "static"}

FIELD_RE = re.compile(r'name="([A-Za-z0-9_-]+)"')

nasty_text = st.one_of(
    st.sampled_from([
        "", " ", "0", "-1", "1", "2", "²", "١٢", "½", "1e9", "0x10", "NaN", str(2**31), str(2**63),
        "9" * 40, "9999-12-31", "0001-01-01", "2026-02-30", "20260101", "2026-W01-1", "2026-12-01",
        "a@example.org", "a@x,b@y", "a@example.org\r\nBcc: b@example.org", "x\x00y", "\x00",
        "=cmd|' /C calc'!A0", "<script>alert(1)</script>", "' OR 1=1 --", "../../etc/passwd",
        "on", "y", "true", "csv", "xlsx", "pdf", "zip", "officer", "coordinator", "hr", "admin",
        "supervisor", "active", "leave", "separated", "not_started", "overdue", "complete",
        "correct horse battery staple", "x" * 5000, "\ud7ff", "\u202e", "\t", "\r\n",
    ]),
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.dates().map(lambda d: d.isoformat()),
)
path_ids = st.one_of(st.sampled_from([0, 1, 2, 3, 2**31 - 1, 2**31, 2**63, 10**12]),
                     st.integers(min_value=0, max_value=400))


def _table_counts(app) -> dict[str, int]:
    """Row counts of every table but the ones refusals write, in one statement."""
    tables = sorted(t.name for t in Base.metadata.sorted_tables if t.name not in WRITTEN_ON_REFUSAL)
    sql = " UNION ALL ".join(f"SELECT '{name}', count(*) FROM {name}" for name in tables)
    with get_database(app).engine.connect() as connection:
        return dict(connection.execute(text(sql)).all())


@pytest.fixture
def fuzz_app(app):
    """Generous limits, so wrong passwords among the fuzzed values do not lock the fuzzing
    members out before the run ends (lockout itself is tested in test_accounts.py)."""
    app.config.update(LOCKOUT_THRESHOLD=10**6, SIGN_IN_IP_MAX_FAILURES=10**6, PROPAGATE_EXCEPTIONS=False)
    return app


@pytest.fixture
def targets(fuzz_app, world):  # noqa: F811 (the fixture imported above)
    """Each role's signed-in client; per route, the role allowed to use it and the field names of
    its page's forms; real values for path arguments."""
    app = fuzz_app
    clients = {role: _signed_in_client(app, world["members"].get(role)) for role in ROLES}
    routes = sorted((rule for rule in app.url_map.iter_rules() if rule.endpoint not in SKIPPED),
                    key=lambda rule: (rule.rule, sorted(rule.methods)))
    common = {"csrf_token", "q", "page", "sort", "dir", "status", "unit", "since", "until", "password"}
    fields: dict[str, set[str]] = {}
    allowed: dict[str, str] = {}
    for rule in routes:
        allowed[rule.endpoint] = next((role for role in ROLES[1:]
                                       if EXPECTED[rule.endpoint][role] in ("ok", "404")), "anonymous")
        url = rule.build({arg: world["values"].get(arg, 1) for arg in rule.arguments})[1]
        found = set(common)
        for role in ROLES[1:]:
            response = clients[role].get(url)
            if response.status_code == 200 and response.mimetype == "text/html":
                found.update(FIELD_RE.findall(response.get_data(as_text=True)))
            response.close()
        fields[rule.endpoint] = found
    # A POST-only route's fields are on the page of the GET route at the same address or above it.
    every = sorted(set().union(*fields.values()))
    return {"app": app, "clients": clients, "routes": routes, "allowed": allowed,
            "fields": {endpoint: sorted(names) for endpoint, names in fields.items()}, "every": every,
            "values": world["values"]}


@pytest.mark.fuzz
def test_no_request_ends_in_a_server_error_or_a_partial_write(targets):
    app, clients, routes, values = targets["app"], targets["clients"], targets["routes"], targets["values"]
    tokens = {role: csrf_token(clients[role], "/sign-in") for role in ROLES}

    @st.composite
    def requests(draw):
        rule = draw(st.sampled_from(routes))
        # Mostly as someone the route admits, so the input reaches the view's validation.
        role = draw(st.one_of(st.just(targets["allowed"][rule.endpoint]), st.sampled_from(ROLES)))
        method = draw(st.sampled_from(sorted(rule.methods & {"GET", "POST"})))
        names = targets["fields"][rule.endpoint] if draw(st.integers(0, 3)) else targets["every"]
        data = draw(st.dictionaries(st.sampled_from(names),
                                    st.one_of(nasty_text, st.lists(nasty_text, min_size=2, max_size=3)),
                                    max_size=8))
        arguments = {}
        for arg in rule.arguments:
            if f"<int:{arg}>" in rule.rule:
                arguments[arg] = draw(st.one_of(st.just(values.get(arg, 1)), path_ids))
            else:
                arguments[arg] = draw(st.one_of(st.just(str(values.get(arg, "x"))), nasty_text))
        return rule, role, method, data, arguments, draw(st.integers(0, 9))

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(request=requests())
    def one_request(request):
        rule, role, method, data, arguments, token_roll = request
        url = rule.rule
        for arg, value in arguments.items():
            url = re.sub(rf"<(?:\w+:)?{arg}>", quote(str(value), safe="") or "x", url)
        client = clients[role]
        before = _table_counts(app) if method == "POST" else None
        if method == "GET":
            response = client.get(url, query_string=data)
        else:
            body = dict(data)
            if token_roll:  # one request in ten goes without a CSRF token
                for name in [*targets["fields"][rule.endpoint], "csrf_token"]:
                    if name.endswith("csrf_token") and name not in body:
                        body[name] = tokens[role]
            response = client.post(url, data=body)
        status = response.status_code
        page = response.get_data(as_text=True) if response.mimetype.startswith("text/") else ""
        response.close()
        assert status < 500, f"{method} {url} as {role} with {data!r}: {status}"
        assert "Traceback" not in page, f"{method} {url} as {role} with {data!r}: a traceback"
        if before is not None and 400 <= status < 500:
            after = _table_counts(app)
            changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
            assert not changed, f"{method} {url} as {role} was refused ({status}) but wrote {changed}"

    one_request()
