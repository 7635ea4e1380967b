"""extra quiz attempts granted by a coordinator; answers saved while an attempt is open

Revision ID: 0012
Revises: 0011

``attempt_grant`` records each grant of extra attempts (how many, why, by whom, when); it is
append-only, like the other records. ``assignment.extra_attempts`` is their sum, kept by
``lms.models.assignment_state`` with the other stored columns so the roster shows the attempts
allowed without reading the grants. ``attempt_item.saved`` holds the options a member has chosen
but not yet submitted, so an idle sign-out or a dropped connection loses nothing.
"""
import sqlalchemy as sa
from alembic import op

import lms.db
from lms.migrate_helpers import append_only, drop_append_only

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('attempt_grant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('granted_by_id', sa.Integer(), nullable=False),
    sa.Column('granted_at', lms.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignment.id'], name=op.f('fk_attempt_grant_assignment_id_assignment')),
    sa.ForeignKeyConstraint(['granted_by_id'], ['member.id'], name=op.f('fk_attempt_grant_granted_by_id_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attempt_grant'))
    )
    with op.batch_alter_table('attempt_grant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attempt_grant_assignment_id'), ['assignment_id'], unique=False)
    append_only(['attempt_grant'])
    # Plain ADD COLUMN with a server default, not batch mode (as in 0009/0010): a batch copy of
    # assignment would drop the table other tables point at. No grant exists yet: 0 is right.
    op.add_column('assignment', sa.Column('extra_attempts', sa.Integer(), server_default='0', nullable=False))
    op.add_column('attempt_item', sa.Column('saved', sa.JSON(), nullable=True))
    op.add_column('attempt_item', sa.Column('saved_at', lms.db.UTCDateTime(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+ has it), not a batch copy: copying assignment or attempt_item
    # would drop tables that others point at.
    op.drop_column('attempt_item', 'saved_at')
    op.drop_column('attempt_item', 'saved')
    op.drop_column('assignment', 'extra_attempts')
    drop_append_only(['attempt_grant'])
    with op.batch_alter_table('attempt_grant', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attempt_grant_assignment_id'))
    op.drop_table('attempt_grant')
