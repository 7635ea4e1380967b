"""local accounts: invitations to set the first password, TOTP second factor and recovery codes

Revision ID: 0017
Revises: 0014

New tables only, so the migration is the same on a populated database as on an empty one.
"""
from alembic import op
import sqlalchemy as sa
import lms.db


revision = '0017'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('invitation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', lms.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', lms.db.UTCDateTime(), nullable=False),
    sa.Column('used_at', lms.db.UTCDateTime(), nullable=True),
    sa.Column('replaced_at', lms.db.UTCDateTime(), nullable=True),
    sa.Column('sent_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], name=op.f('fk_invitation_member_id_member')),
    sa.ForeignKeyConstraint(['sent_by_id'], ['member.id'], name=op.f('fk_invitation_sent_by_id_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitation')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_invitation_token_hash'))
    )
    op.create_index(op.f('ix_invitation_member_id'), 'invitation', ['member_id'], unique=False)
    op.create_table('totp_factor',
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('secret', sa.String(length=64), nullable=False),
    sa.Column('created_at', lms.db.UTCDateTime(), nullable=False),
    sa.Column('confirmed_at', lms.db.UTCDateTime(), nullable=True),
    sa.Column('last_step', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], name=op.f('fk_totp_factor_member_id_member')),
    sa.PrimaryKeyConstraint('member_id', name=op.f('pk_totp_factor'))
    )
    op.create_table('recovery_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', lms.db.UTCDateTime(), nullable=False),
    sa.Column('used_at', lms.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], name=op.f('fk_recovery_code_member_id_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_code'))
    )
    op.create_index(op.f('ix_recovery_code_member_id'), 'recovery_code', ['member_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_recovery_code_member_id'), table_name='recovery_code')
    op.drop_table('recovery_code')
    op.drop_table('totp_factor')
    op.drop_index(op.f('ix_invitation_member_id'), table_name='invitation')
    op.drop_table('invitation')
