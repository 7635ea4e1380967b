"""local accounts: invitations to set the first password, second factors (TOTP, passkeys) and recovery codes

Revision ID: 0017
Revises: 0016

New tables only, so the migration is the same on a populated database as on an empty one.
"""
import sqlalchemy as sa
from alembic import op

import lms.db

revision = '0017'
down_revision = '0016'
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
    op.create_table('passkey_credential',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('credential_id', sa.String(length=1400), nullable=False),
    sa.Column('public_key', sa.LargeBinary(), nullable=False),
    sa.Column('sign_count', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('created_at', lms.db.UTCDateTime(), nullable=False),
    sa.Column('last_used_at', lms.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], name=op.f('fk_passkey_credential_member_id_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_passkey_credential')),
    sa.UniqueConstraint('credential_id', name=op.f('uq_passkey_credential_credential_id'))
    )
    op.create_index(op.f('ix_passkey_credential_member_id'), 'passkey_credential', ['member_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_passkey_credential_member_id'), table_name='passkey_credential')
    op.drop_table('passkey_credential')
    op.drop_index(op.f('ix_recovery_code_member_id'), table_name='recovery_code')
    op.drop_table('recovery_code')
    op.drop_table('totp_factor')
    op.drop_index(op.f('ix_invitation_member_id'), table_name='invitation')
    op.drop_table('invitation')
