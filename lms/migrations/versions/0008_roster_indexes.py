"""roster indexes: signatures and attempts read from their indexes; members in roster order

Revision ID: 0008
Revises: 0007

The roster reads, for every assignment of a cycle, its live signature and its quiz attempts
(docs/performance.md). Acknowledgment rows are over a kilobyte (the attestation, the user agent),
so reading 50,000 of them to get a date each is most of a roster query; this index holds what the
roster needs, so the query never touches the table (an index-only scan on PostgreSQL, which also
needs the id to leave voided records out). The attempt index does the same for quiz attempts.
The member index is the roster's default order (last name, first name, badge): PostgreSQL reads
a page of 50 from it instead of sorting the whole cycle (SQLite's planner does not use it).
Plain CREATE INDEX: acknowledgment is append-only (triggers), and an index leaves rows alone.
"""
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_acknowledgment_cycle_id_assignment_id', 'acknowledgment',
                    ['cycle_id', 'assignment_id', 'signed_at', 'signed_at_local', 'policy_effective'],
                    unique=False, postgresql_include=['id'])
    op.create_index('ix_quiz_attempt_assignment_id_started_at', 'quiz_attempt',
                    ['assignment_id', 'started_at', 'submitted_at', 'score', 'passed'], unique=False)
    op.create_index('ix_member_last_name_first_name_badge', 'member', ['last_name', 'first_name', 'badge'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_member_last_name_first_name_badge', table_name='member')
    op.drop_index('ix_quiz_attempt_assignment_id_started_at', table_name='quiz_attempt')
    op.drop_index('ix_acknowledgment_cycle_id_assignment_id', table_name='acknowledgment')
