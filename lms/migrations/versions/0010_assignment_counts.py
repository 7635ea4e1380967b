"""stored assignment counts: the roster's lessons read, attempts and best score without grouping

Revision ID: 0010
Revises: 0009

Each assignment also keeps the three counts the roster shows: lessons read (of those still in the
pack), quiz attempts submitted and the best submitted score. ``lms.models.assignment_state`` keeps
them with the progress of revision 0009, by the same listener and rule, so an export of every row
of a 50,000-member cycle reads them from the assignment instead of grouping the cycle's lessons
read and attempts each time (docs/performance.md, "Stored counts: the CSV on PostgreSQL").

The backfill below is this revision's own copy of the rule in
``lms.models.assignment_state.state_values``, written as SQL so the migration keeps meaning what it
meant when later code changes; the tests hold the two to the same results.
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

BACKFILL = """
UPDATE assignment SET
  lessons_completed = (
    SELECT count(lp.id) FROM lesson_progress lp JOIN lesson l ON l.id = lp.lesson_id
    WHERE lp.assignment_id = assignment.id AND NOT l.retired),
  quiz_attempts = (
    SELECT count(qa.id) FROM quiz_attempt qa
    WHERE qa.assignment_id = assignment.id AND qa.submitted_at IS NOT NULL),
  quiz_best_score = (
    SELECT max(qa.score) FROM quiz_attempt qa
    WHERE qa.assignment_id = assignment.id AND qa.submitted_at IS NOT NULL)
"""


def upgrade() -> None:
    # Plain ADD COLUMN with a server default, not batch mode (as in 0009): a batch copy of
    # assignment would drop the table that lesson_progress, quiz_attempt and acknowledgment
    # point at.
    op.add_column('assignment', sa.Column('lessons_completed', sa.Integer(), server_default='0', nullable=False))
    op.add_column('assignment', sa.Column('quiz_attempts', sa.Integer(), server_default='0', nullable=False))
    op.add_column('assignment', sa.Column('quiz_best_score', sa.Integer(), nullable=True))
    op.execute(BACKFILL)


def downgrade() -> None:
    with op.batch_alter_table('assignment') as batch:
        batch.drop_column('quiz_best_score')
        batch.drop_column('quiz_attempts')
        batch.drop_column('lessons_completed')
