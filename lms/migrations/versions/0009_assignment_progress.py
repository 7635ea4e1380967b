"""stored assignment progress: the roster of now without a pass over lessons, attempts, signatures

Revision ID: 0009
Revises: 0008

Each assignment keeps the part of its status that does not depend on the date: its progress
(not_started, in_progress, quiz_failed, quiz_passed), the local date of the signature that stands,
and the reason of the exemption in force. ``lms.models.assignment_state`` keeps them up to date on
every flush; the roster adds overdue and complete/complete_late when it reads them, so the counts
of a 50,000-member cycle come from one index (docs/performance.md).

The backfill below is this revision's own copy of the rule in
``lms.models.assignment_state.state_values``, written as SQL so the migration keeps meaning what it
meant when later code changes; the tests hold the two to the same results.
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

BACKFILL = """
UPDATE assignment SET
  progress = (
    SELECT CASE
      WHEN count(CASE WHEN qa.submitted_at IS NOT NULL AND qa.passed THEN 1 END) > 0 THEN 'quiz_passed'
      WHEN count(CASE WHEN qa.submitted_at IS NOT NULL THEN 1 END) > 0 THEN 'quiz_failed'
      WHEN count(qa.id) > 0 OR EXISTS (
        SELECT 1 FROM lesson_progress lp JOIN lesson l ON l.id = lp.lesson_id
        WHERE lp.assignment_id = assignment.id AND NOT l.retired) THEN 'in_progress'
      ELSE 'not_started' END
    FROM quiz_attempt qa WHERE qa.assignment_id = assignment.id),
  signed_on = (
    SELECT max({signed_on}) FROM acknowledgment ack
    WHERE ack.cycle_id = assignment.cycle_id AND ack.assignment_id = assignment.id
      AND ack.id NOT IN (SELECT acknowledgment_id FROM acknowledgment_void)),
  exemption_reason = (
    SELECT max(e.reason) FROM exemption e
    WHERE e.cycle_id = assignment.cycle_id AND e.member_id = assignment.member_id
      AND e.lifted_at IS NULL)
"""


def upgrade() -> None:
    # Plain ADD COLUMN with a server default, not batch mode: a batch copy of assignment would
    # drop the table that lesson_progress, quiz_attempt and acknowledgment point at.
    op.add_column('assignment', sa.Column('progress', sa.String(length=20), server_default='not_started',
                                          nullable=False))
    op.add_column('assignment', sa.Column('signed_on', sa.Date(), nullable=True))
    op.add_column('assignment', sa.Column('exemption_reason', sa.String(length=500), nullable=True))
    # The local date of signing is the first ten characters of the recorded local time (ISO 8601);
    # SQLite keeps dates as that text, PostgreSQL needs it cast.
    signed_on = ("CAST(substr(ack.signed_at_local, 1, 10) AS DATE)"
                 if op.get_bind().dialect.name == "postgresql" else "substr(ack.signed_at_local, 1, 10)")
    op.execute(BACKFILL.format(signed_on=signed_on))
    op.create_index('ix_assignment_cycle_id_state', 'assignment',
                    ['cycle_id', 'superseded_at', 'member_id', 'due_date', 'signed_on', 'progress',
                     'exemption_reason'], unique=False)
    # The roster's shift and rank choices are read as a walk over these (units have theirs).
    op.create_index('ix_member_shift', 'member', ['shift'], unique=False)
    op.create_index('ix_member_rank', 'member', ['rank'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_member_rank', table_name='member')
    op.drop_index('ix_member_shift', table_name='member')
    op.drop_index('ix_assignment_cycle_id_state', table_name='assignment')
    with op.batch_alter_table('assignment') as batch:
        batch.drop_column('exemption_reason')
        batch.drop_column('signed_on')
        batch.drop_column('progress')
