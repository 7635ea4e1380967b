"""All models, imported here so metadata and Alembic see every table."""
# Keeps Assignment's stored progress up to date on every flush; imported for that effect.
from lms.models import assignment_state  # noqa: E402,F401
from lms.models.anchors import ChainAnchor
from lms.models.audit import AuditEvent
from lms.models.identity import Invitation, PasskeyCredential, RecoveryCode, TotpFactor
from lms.models.imports import PersonnelUpload
from lms.models.jobs import JOB_STATUSES, Job, ReminderSchedule, WorkerHeartbeat
from lms.models.people import (
    MEMBER_STATUSES,
    ROLES,
    TRACKED_FIELDS,
    Member,
    MemberRole,
    PersonnelChange,
    SeenAssertion,
    SignInSession,
)
from lms.models.policies import Lesson, Policy, PolicyVersion, Question, QuestionOption
from lms.models.records import Acknowledgment, AcknowledgmentVoid, ChainHead, Receipt
from lms.models.training import (
    Assignment,
    AttemptGrant,
    AttemptItem,
    Cycle,
    CyclePolicy,
    DueDateChange,
    Exemption,
    LessonProgress,
    QuizAttempt,
    Reminder,
)

__all__ = [
    "Acknowledgment", "AcknowledgmentVoid", "Assignment", "AttemptGrant", "AttemptItem", "AuditEvent", "ChainAnchor",
    "ChainHead", "Cycle", "CyclePolicy", "DueDateChange", "Exemption", "Invitation", "JOB_STATUSES", "Job", "Lesson",
    "LessonProgress", "MEMBER_STATUSES", "Member", "MemberRole", "PasskeyCredential", "PersonnelChange",
    "PersonnelUpload", "Policy", "PolicyVersion", "Question", "QuestionOption", "QuizAttempt", "ROLES", "Receipt",
    "RecoveryCode", "Reminder", "ReminderSchedule", "SeenAssertion", "SignInSession", "TRACKED_FIELDS", "TotpFactor",
    "WorkerHeartbeat",
]
