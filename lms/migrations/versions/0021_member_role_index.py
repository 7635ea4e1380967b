"""an index on member_role by role: the training contacts without a pass over every member

Revision ID: 0021
Revises: 0019

Every quiz, assignment and signing page names the department's training coordinators
(``attempt_grants.training_contacts``). Without an index leading with the role, finding them meant
walking every member in name order and probing each one's roles: about 240 ms at 50,000 members
on SQLite, against a few microseconds with this index (docs/performance.md).
"""
from alembic import op

revision = '0021'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_member_role_role', 'member_role', ['role', 'member_id'])


def downgrade() -> None:
    op.drop_index('ix_member_role_role', table_name='member_role')
