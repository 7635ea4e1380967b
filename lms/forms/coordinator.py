"""The coordinator's forms: the shape of input only. Which policies, units, ranks, shifts and
supervisors exist is the view's to pass in as choices; whether a cycle or an exemption may be made
is the service's to decide (lms.services.cycles)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from lms.forms.fields import WholeNumberField
from lms.forms.hr import IsoDateField

#: Roster sort directions, as they appear in the URL.
DIRECTIONS = [("asc", "Ascending"), ("desc", "Descending")]


class CheckboxesField(SelectMultipleField):
    """A group of checkboxes (one per choice) that posts a list, shown in a fieldset by the template.

    An unknown value is an error naming it, e.g. "There is no unit ‘Harbor’ on the roster."
    """

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _unknown(noun: str) -> str:
    # WTForms fills in %(value)s with the unknown value(s), quoted and comma-separated.
    return f"There is no {noun} ‘%(value)s’ to choose; pick from the list."


class CycleForm(FlaskForm):
    """Open a training cycle. Posted once to preview (how many members it assigns), then again
    with ``confirm`` to open it."""

    year = WholeNumberField("Year", validators=[InputRequired("Enter the cycle's year, e.g. 2027.")])
    name = StringField("Name", validators=[Optional(), Length(max=120, message="Keep the name under 120 characters.")])
    due_date = IsoDateField("Due date", validators=[InputRequired("Enter the due date as YYYY-MM-DD.")])
    policies = CheckboxesField("Policies", invalid_choice_message=_unknown("policy"))
    units = CheckboxesField("Units", invalid_choice_message=_unknown("unit"))
    ranks = CheckboxesField("Ranks", invalid_choice_message=_unknown("rank"))
    shifts = CheckboxesField("Shifts", invalid_choice_message=_unknown("shift"))
    grace_days = WholeNumberField("Grace days for late joiners", default=30,
                              validators=[InputRequired("Enter a number of days, e.g. 30.")])


class CycleEditForm(FlaskForm):
    """Change a cycle's name, due date, grace period and audience; previewed, then confirmed."""

    name = StringField("Name", validators=[InputRequired("Give the cycle a name."),
                                           Length(max=120, message="Keep the name under 120 characters.")])
    due_date = IsoDateField("Due date", validators=[InputRequired("Enter the due date as YYYY-MM-DD.")])
    grace_days = WholeNumberField("Grace days for late joiners",
                                  validators=[InputRequired("Enter a number of days, e.g. 30.")])
    units = CheckboxesField("Units", invalid_choice_message=_unknown("unit"))
    ranks = CheckboxesField("Ranks", invalid_choice_message=_unknown("rank"))
    shifts = CheckboxesField("Shifts", invalid_choice_message=_unknown("shift"))


class RosterForm(FlaskForm):
    """The roster's filters, sort and page: a GET form, so the view is a bookmarkable URL and
    carries no CSRF token."""

    class Meta:
        csrf = False

    policy = SelectField("Policy", default="", invalid_choice_message="Choose one of the cycle's policies.")
    status = CheckboxesField("Status", invalid_choice_message=_unknown("status"))
    unit = CheckboxesField("Unit", invalid_choice_message=_unknown("unit"))
    shift = CheckboxesField("Shift", invalid_choice_message=_unknown("shift"))
    rank = CheckboxesField("Rank", invalid_choice_message=_unknown("rank"))
    # A text box rather than a list: a large department has thousands of supervisors.
    supervisor = StringField("Supervisor's badge", validators=[
        Optional(), Length(max=200, message="Keep the list of badges under 200 characters.")])
    q = StringField("Name or badge", validators=[
        Optional(), Length(max=100, message="Keep the search under 100 characters.")])
    as_of = IsoDateField("As of the end of", validators=[Optional()])
    sort = SelectField("Sort by", default="last_name", invalid_choice_message="Sort by one of the listed columns.")
    dir = SelectField("Order", default="asc", invalid_choice_message="Choose ascending or descending.")
    page = WholeNumberField("Page", default=1, validators=[Optional(), NumberRange(min=1, message="Pages start at 1.")])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Set after construction: WTForms 3.3 deprecates tuple choices passed to the constructor.
        self.dir.choices = DIRECTIONS


class ExemptionForm(FlaskForm):
    """Excuse a member from a cycle. The service decides how short a reason may be."""

    reason = TextAreaField("Reason for the exemption", validators=[
        DataRequired("Give the reason for the exemption, e.g. military leave."),
        Length(max=500, message="Keep the reason to 500 characters or fewer.")])


class AttemptGrantForm(FlaskForm):
    """Grant a member extra quiz attempts on one of their assignments, confirmed by password.
    Made with ``prefix=grant_prefix(assignment_id)``: a member page has one per assignment."""

    attempts = WholeNumberField("Extra attempts", default=1, validators=[
        InputRequired("Enter how many attempts to grant, e.g. 1."),
        NumberRange(min=1, max=10, message="Grant from 1 to 10 attempts.")])
    reason = TextAreaField("Reason", validators=[
        DataRequired("Give the reason for the extra attempts; it is kept on the record."),
        Length(max=500, message="Keep the reason under 500 characters.")])
    password = PasswordField("Your password", validators=[
        DataRequired("Re-enter your password to grant attempts."), Length(max=256)])


class RosterActionForm(FlaskForm):
    """An action on roster rows: which action, the rows ticked (assignment ids) or every row that
    matches the filters, the roster's query string those filters come from, and on the
    confirmation page the fingerprint of the list shown. The rows are checked by the view."""

    action = SelectField("Action", invalid_choice_message="Choose one of the actions.")
    all_matching = BooleanField("Every row that matches the filters")
    row = SelectMultipleField("Rows", validate_choice=False)
    query = HiddenField(validators=[Length(max=4000, message="The roster filters are too long.")])
    fingerprint = HiddenField(validators=[Length(max=64)])


def grant_prefix(assignment_id: int) -> str:
    """The field prefix of an assignment's AttemptGrantForm, so several on a page keep unique ids."""
    return f"grant{assignment_id}"
