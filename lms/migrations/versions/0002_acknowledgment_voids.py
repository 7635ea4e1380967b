"""acknowledgment voids

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 22:22:24.413203
"""
import sqlalchemy as sa
from alembic import op

import lms.db
from lms.migrate_helpers import append_only, drop_append_only

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('acknowledgment_void',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('acknowledgment_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('voided_by_id', sa.Integer(), nullable=False),
    sa.Column('voided_at', lms.db.UTCDateTime(), nullable=False),
    sa.Column('voided_from_ip', sa.String(length=64), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('record_hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['acknowledgment_id'], ['acknowledgment.id'], name=op.f('fk_acknowledgment_void_acknowledgment_id_acknowledgment')),
    sa.ForeignKeyConstraint(['voided_by_id'], ['member.id'], name=op.f('fk_acknowledgment_void_voided_by_id_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_acknowledgment_void')),
    sa.UniqueConstraint('acknowledgment_id', name=op.f('uq_acknowledgment_void_acknowledgment_id')),
    sa.UniqueConstraint('sequence', name=op.f('uq_acknowledgment_void_sequence'))
    )

    append_only(["acknowledgment_void"])

def downgrade() -> None:
    drop_append_only(["acknowledgment_void"])
    op.drop_table('acknowledgment_void')
