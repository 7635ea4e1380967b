"""chain anchors: timestamp tokens over the record chain's head, append-only

Revision ID: 0013
Revises: 0012

A new table only; existing records are untouched, so populated databases upgrade as they are.
"""
import sqlalchemy as sa
from alembic import op

import lms.db
from lms.migrate_helpers import append_only, drop_append_only

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('chain_anchor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('anchored_at', lms.db.UTCDateTime(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.Column('method', sa.String(length=30), nullable=False),
    sa.Column('authority', sa.String(length=300), nullable=False),
    sa.Column('token', sa.LargeBinary(), nullable=False),
    sa.Column('token_time', lms.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chain_anchor'))
    )
    append_only(["chain_anchor"])


def downgrade() -> None:
    drop_append_only(["chain_anchor"])
    op.drop_table('chain_anchor')
