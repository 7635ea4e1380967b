"""Filters of the audit log (a GET form: no CSRF token, nothing changes)."""
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional, ValidationError

from lms.forms.hr import IsoDateField


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False

    action = StringField("Action starts with", validators=[Optional(), Length(max=60)])
    actor = StringField("Actor badge", validators=[Optional(), Length(max=20)])
    outcome = SelectField("Outcome", choices=[SelectChoice("", "Any"), SelectChoice("success", "Success"),
                                   SelectChoice("failure", "Failure")],
                          validators=[Optional()])
    since = IsoDateField("From (date)", validators=[Optional()])
    until = IsoDateField("To (date, inclusive)", validators=[Optional()])

    def validate_until(self, field):
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError("The end date is before the start date.")
