"""cycles are identified by id: several a year, each with a name of its own; cycles can be closed

Revision ID: 0018
Revises: 0017

The year loses its unique constraint (a year has its annual cycle, its new-hire cycle, a remedial
one) and keeps an index for the CLI's ``--cycle YEAR``; the name becomes unique, so a name names
exactly one cycle wherever it is typed. Names were "{year} annual" with one cycle a year, so they
are already unique on a populated database. ``closed_at``/``closed_by_id`` record a closed cycle.

SQLite rebuilds the cycle table, which other tables point at: lms.migrate runs migrations with
SQLite's foreign keys off and checks them before committing.
"""
import sqlalchemy as sa
from alembic import op

import lms.db

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cycle', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_at', lms.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('closed_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_cycle_closed_by_id_member'), 'member', ['closed_by_id'], ['id'])
        batch_op.drop_constraint(batch_op.f('uq_cycle_year'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_cycle_name'), ['name'])
        batch_op.create_index(batch_op.f('ix_cycle_year'), ['year'], unique=False)


def downgrade() -> None:
    # Only possible while each year still has one cycle.
    with op.batch_alter_table('cycle', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cycle_year'))
        batch_op.drop_constraint(batch_op.f('uq_cycle_name'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_cycle_year'), ['year'])
        batch_op.drop_constraint(batch_op.f('fk_cycle_closed_by_id_member'), type_='foreignkey')
        batch_op.drop_column('closed_by_id')
        batch_op.drop_column('closed_at')
