"""exemptions and reminders

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 22:50:47.745635
"""
import sqlalchemy as sa
from alembic import op

import lms.db

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('exemption',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cycle_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('granted_by_id', sa.Integer(), nullable=True),
    sa.Column('granted_at', lms.db.UTCDateTime(), nullable=False),
    sa.Column('lifted_at', lms.db.UTCDateTime(), nullable=True),
    sa.Column('lifted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['cycle_id'], ['cycle.id'], name=op.f('fk_exemption_cycle_id_cycle')),
    sa.ForeignKeyConstraint(['granted_by_id'], ['member.id'], name=op.f('fk_exemption_granted_by_id_member')),
    sa.ForeignKeyConstraint(['lifted_by_id'], ['member.id'], name=op.f('fk_exemption_lifted_by_id_member')),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], name=op.f('fk_exemption_member_id_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exemption'))
    )
    with op.batch_alter_table('exemption', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exemption_cycle_id'), ['cycle_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_exemption_member_id'), ['member_id'], unique=False)

    op.create_table('reminder',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('cycle_id', sa.Integer(), nullable=False),
    sa.Column('sent_on', sa.Date(), nullable=False),
    sa.Column('sent_at', lms.db.UTCDateTime(), nullable=False),
    sa.Column('sent_by_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['cycle_id'], ['cycle.id'], name=op.f('fk_reminder_cycle_id_cycle')),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], name=op.f('fk_reminder_member_id_member')),
    sa.ForeignKeyConstraint(['sent_by_id'], ['member.id'], name=op.f('fk_reminder_sent_by_id_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reminder')),
    sa.UniqueConstraint('member_id', 'sent_on', name=op.f('uq_reminder_member_id_sent_on'))
    )


def downgrade() -> None:
    op.drop_table('reminder')
    with op.batch_alter_table('exemption', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exemption_member_id'))
        batch_op.drop_index(batch_op.f('ix_exemption_cycle_id'))

    op.drop_table('exemption')
