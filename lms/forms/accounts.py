"""Account forms: passwords and roles. Input shape only; the password policy lives in
lms.services.accounts, so the CLI and the web refuse the same passwords."""
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from lms.forms.fields import ascii_code
from lms.forms.hr import IsoDateField
from lms.models import MEMBER_STATUSES, ROLES

# Longer than the policy's limit, so an over-long password gets the policy's message, not this one.
_MAX = 1024


ROLE_LABELS = {"officer": "Officer", "supervisor": "Supervisor (sees their reports)",
               "coordinator": "Training coordinator", "hr": "HR / records",
               "admin": "Administrator"}


def role_choices(roles=ROLES) -> list[SelectChoice]:
    """Choices for a role select, in the order of ROLES."""
    return [SelectChoice(r, ROLE_LABELS[r]) for r in ROLES if r in roles]


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[
        DataRequired("Enter your current password."), Length(max=_MAX)])
    new_password = PasswordField("New password", validators=[
        DataRequired("Enter a new password."), Length(max=_MAX)])
    confirm_password = PasswordField("New password again", validators=[
        DataRequired("Enter the new password again."),
        EqualTo("new_password", "The two new passwords are not the same.")])


class AdminPasswordForm(FlaskForm):
    """An administrator's action that needs their own password re-entered."""

    admin_password = PasswordField("Your password", validators=[
        DataRequired("Re-enter your own password to confirm."), Length(max=_MAX)])


class RoleForm(AdminPasswordForm):
    role = SelectField("Role", choices=role_choices(),
                       validators=[DataRequired("Choose a role.")])


class MemberLookupForm(FlaskForm):
    """A GET search: nothing changes, so no CSRF token in the URL."""

    class Meta:
        csrf = False

    q = StringField("Badge number or name", validators=[Length(max=100)])


class PersonnelForm(FlaskForm):
    """An administrator's change of a member's status, unit, shift, rank and supervisor. The view
    fills the rank choices from the configuration; the service checks the supervisor exists."""

    status = SelectField("Status", choices=[SelectChoice(s, s.capitalize()) for s in MEMBER_STATUSES])
    unit = StringField("Unit", validators=[Optional(), Length(max=80)])
    shift = StringField("Shift", validators=[Optional(), Length(max=40)])
    rank = SelectField("Rank", validate_choice=False)
    supervisor = StringField("Supervisor's badge", validators=[Optional(), Length(max=20)])
    effective = IsoDateField("Takes effect on (optional)", validators=[Optional()])


class FirstPasswordForm(FlaskForm):
    """The password a member chooses from their invitation."""

    new_password = PasswordField("Choose a password", validators=[
        DataRequired("Enter a password."), Length(max=_MAX)])
    confirm_password = PasswordField("The same password again", validators=[
        DataRequired("Enter the password again."),
        EqualTo("new_password", "The two passwords are not the same.")])


class SecondFactorForm(FlaskForm):
    """A code from the authenticator app, or a recovery code."""

    code = StringField("Code", validators=[DataRequired("Enter the code."), Length(max=40), ascii_code(
        "Type the code with the digits 0-9 (a recovery code also has the letters a-z and dashes).")])
