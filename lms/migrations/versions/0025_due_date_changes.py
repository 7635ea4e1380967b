"""due-date history: each move of an assignment's due date with the day it took effect

Revision ID: 0025
Revises: 0021

A new table only. Assignments moved before it existed keep their latest due date, as before.
"""
import sqlalchemy as sa
from alembic import op

import lms.db

revision = '0025'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('due_date_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('due_before', sa.Date(), nullable=False),
    sa.Column('due_after', sa.Date(), nullable=False),
    sa.Column('effective_on', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('changed_at', lms.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignment.id'], name=op.f('fk_due_date_change_assignment_id_assignment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_due_date_change'))
    )
    op.create_index('ix_due_date_change_assignment_effective', 'due_date_change', ['assignment_id', 'effective_on'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_due_date_change_assignment_effective', table_name='due_date_change')
    op.drop_table('due_date_change')
