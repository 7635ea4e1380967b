"""supervisors: the supervisor role, and members indexed by their supervisor

Revision ID: 0019
Revises: 0018

A sergeant or lieutenant holds the new ``supervisor`` role and sees the members who report to
them, directly and through their sergeants: a walk down ``member.supervisor_id`` one level at a
time (lms.services.roster.reports_of), each level a lookup in the new indexes (the member rows now;
the recorded supervisor changes for a roster as of a date) rather than a read of every member. The role's CHECK constraint is rebuilt to allow the new value (SQLite rebuilds the
small member_role table to do so; PostgreSQL drops and adds the constraint).
"""
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

BEFORE = "role IN ('officer', 'coordinator', 'hr', 'admin')"
AFTER = "role IN ('officer', 'supervisor', 'coordinator', 'hr', 'admin')"


def _check(condition: str) -> None:
    with op.batch_alter_table('member_role', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_member_role_role'), type_='check')
        batch_op.create_check_constraint(op.f('ck_member_role_role'), condition)


def upgrade() -> None:
    _check(AFTER)
    op.create_index(op.f('ix_member_supervisor_id'), 'member', ['supervisor_id'], unique=False)
    # A plain CREATE INDEX: personnel_change is append-only (triggers), and an index leaves rows alone.
    op.create_index(op.f('ix_personnel_change_supervisor_id'), 'personnel_change', ['supervisor_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_personnel_change_supervisor_id'), table_name='personnel_change')
    op.drop_index(op.f('ix_member_supervisor_id'), table_name='member')
    # Supervisors keep their other roles; the supervisor role itself cannot be expressed before 0019.
    op.execute("DELETE FROM member_role WHERE role = 'supervisor'")
    _check(BEFORE)
