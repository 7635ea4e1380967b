"""Personnel import forms."""
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import BooleanField
from wtforms.validators import Optional

from lms.forms.hr import IsoDateField


class PersonnelUploadForm(FlaskForm):
    file = FileField("Personnel file (CSV)", validators=[
        FileRequired("Choose the CSV file exported from the HR system."),
        FileAllowed(["csv"], "Only .csv files are accepted.")])
    full_roster = BooleanField("This file lists every member (report members missing from it)")
    effective = IsoDateField("Changes take effect on (optional)", validators=[Optional()])


class PersonnelApplyForm(FlaskForm):
    separate_missing = BooleanField("Mark the members missing from the file as separated")
    invite = BooleanField("Invite new members by e-mail to set their password (and members in the file "
                          "who have no password yet)")
