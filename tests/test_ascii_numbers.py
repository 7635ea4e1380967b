"""Numbers are ASCII digits in every form: "²", "٣" or "१२" where a number is entered is a 400
naming the problem, never a 500 and never read as 2 or 3, and nothing is written."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from flask_wtf import FlaskForm
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from wtforms.fields.numeric import FloatField, IntegerField, LocaleAwareNumberField

import lms.forms
from lms.forms.fields import WholeNumberField
from lms.models import Cycle, Invitation
from tests.conftest import csrf_token
from tests.helpers import assignment_of, open_attempt, read_all_lessons, start_quiz
from tests.test_coordinator import field_error

#: Digits of other scripts and digit-like signs: superscripts, circled, Arabic-Indic, Devanagari...
OTHER_DIGIT = st.characters(categories=["Nd", "No"], exclude_characters="0123456789")
#: A number with at least one such digit among ASCII ones.
NUMBER = st.tuples(st.text("0123456789", max_size=3), OTHER_DIGIT, st.text("0123456789", max_size=3)).map("".join)
#: Few cases per test: each posts to a live app; CI's fuzzing covers the rest.
FEW = settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))


def _given_numbers(test):
    """Each test runs on the seed corpus first, then on generated numbers."""
    for seed in ("²", "٣", "١٢", "२०२७", "①", "2027\u0663"):
        test = example(number=seed)(test)
    return FEW(given(number=NUMBER)(test))


@pytest.fixture
def coordinator(make_member, auth):
    member = make_member(first="Casey", last="Lane", roles=("coordinator",), badge="5101")
    auth.sign_in(member.badge)
    return member


def test_a_cycle_year_or_grace_days_in_other_digits_is_refused(client, db, coordinator):
    token = csrf_token(client, "/coordinator/cycles/new")
    before = db.scalar(select(func.count(Cycle.id)))

    @_given_numbers
    def check(number):
        for name in ("year", "grace_days"):
            data = {"csrf_token": token, "year": "2090", "due_date": "2090-06-30", "policies": ["16.3"],
                    "grace_days": "30", name: number}
            response = client.post("/coordinator/cycles/new", data=data)
            assert response.status_code == 400, (name, number)
            assert "digits 0-9" in field_error(response.get_data(as_text=True), name)
        assert db.scalar(select(func.count(Cycle.id))) == before

    check()


def test_a_roster_page_in_other_digits_is_refused(client, db, coordinator, open_cycle):
    cycle = open_cycle()

    @_given_numbers
    def check(number):
        response = client.get(f"/coordinator/cycles/{cycle.id}/roster", query_string={"page": number})
        assert response.status_code == 400, number
        assert "digits 0-9" in response.get_data(as_text=True)

    check()


def test_a_member_to_invite_named_in_other_digits_is_refused(client, db, make_member, auth):
    admin = make_member(first="Carmen", last="Reyes", roles=("admin",), badge="1005")
    make_member(first="Noel", last="Newman", badge="3")
    auth.sign_in(admin.badge)
    token = csrf_token(client, "/admin/invitations/")

    @_given_numbers
    def check(number):
        response = client.post("/admin/invitations/send", data={"csrf_token": token, "scope": "selected",
                                                                 "member_id": [number]})
        assert response.status_code == 400, number
        assert "digits 0-9" in response.get_data(as_text=True)
        assert db.scalar(select(func.count(Invitation.id))) == 0

    check()


def test_autosaved_question_numbers_in_other_digits_are_refused(client, db, make_member, auth, open_cycle):
    officer = make_member(first="Alex", last="Rivera")
    open_cycle()
    assignment = assignment_of(db, officer).id
    auth.sign_in(officer.badge)
    read_all_lessons(client, assignment)
    start_quiz(client, assignment)
    attempt = open_attempt(db, assignment)
    url = f"/training/{assignment}/quiz/{attempt.id}/answers"
    token = csrf_token(client, f"/training/{assignment}/quiz")

    @_given_numbers
    def check(number):
        as_json = client.post(url, data={"csrf_token": token, "positions": ["1", number]},
                              headers={"Accept": "application/json"})
        assert as_json.status_code == 400 and "digits 0-9" in as_json.json["error"], number
        as_page = client.post(url, data={"csrf_token": token, "positions": [number]})
        assert as_page.status_code == 400 and "digits 0-9" in as_page.get_data(as_text=True), number

    check()


def test_a_second_factor_code_in_other_digits_is_refused(app, client, db, make_member, auth):
    member = make_member(first="Hana", last="Records", roles=("hr",), badge="7001")
    auth.sign_in(member.badge)
    client.post("/account/second-factor/totp", data={"csrf_token": csrf_token(client, "/account/second-factor")})
    token = csrf_token(client, "/account/second-factor")

    @_given_numbers
    def check(number):
        code = (number * 6)[:6]
        response = client.post("/account/second-factor/totp/confirm", data={"csrf_token": token, "code": code})
        assert response.status_code == 400, code
        assert "digits 0-9" in response.get_data(as_text=True)

    check()


def test_a_sign_in_code_in_other_digits_is_refused_and_not_counted(app, client, db, make_member):
    from tests.test_second_factor import _code, _enrol, _sign_in

    member = make_member(first="Hana", last="Records", roles=("hr",), badge="7001")
    _sign_in(client, member.badge)
    _enrol(client)
    browser = app.test_client()
    assert _sign_in(browser, member.badge).headers["Location"].endswith("/sign-in/second-factor")

    @_given_numbers
    def check(number):
        response = _code(browser, "/sign-in/second-factor", (number * 6)[:6])
        assert response.status_code == 400, number
        assert "digits 0-9" in response.get_data(as_text=True)

    check()
    db.expire_all()
    assert db.get(type(member), member.id).failed_sign_ins == 0  # refused as malformed, not as a wrong code


def test_every_number_field_in_every_form_is_a_whole_number_field(app):
    """A new form's IntegerField (or DecimalField...) would take "٣" as 3: every number a form asks
    for goes through lms.forms.fields.WholeNumberField."""
    forms = []
    for module in pkgutil.iter_modules(lms.forms.__path__, "lms.forms."):
        forms += [cls for _, cls in inspect.getmembers(importlib.import_module(module.name), inspect.isclass)
                  if issubclass(cls, FlaskForm) and cls.__module__.startswith("lms.forms")]
    forms += [cls for _, cls in inspect.getmembers(lms.forms, inspect.isclass)
              if issubclass(cls, FlaskForm) and cls.__module__.startswith("lms.forms")]
    assert len(forms) > 10
    numbers = []
    with app.test_request_context():
        for cls in forms:
            for unbound in vars(cls).values():
                field_class = getattr(unbound, "field_class", None)
                if field_class and issubclass(field_class, (IntegerField, FloatField, LocaleAwareNumberField)):
                    numbers.append(cls.__name__)
                    assert issubclass(field_class, WholeNumberField), f"{cls.__name__}: {field_class.__name__}"
    assert numbers  # the coordinator's year, grace days, page and attempts at least
