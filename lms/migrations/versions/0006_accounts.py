"""accounts: lockout and password-change state, server-side sign-in sessions, throttle index

Revision ID: 0006
Revises: 0004

Per-IP sign-in throttling needs no table of its own: every failed sign-in is already an audit
event with its IP and time, so the throttle counts those through an index on (action, ip, at).
An index on target serves an account's history on the administrator's page.
"""
import sqlalchemy as sa
from alembic import op

import lms.db

revision = '0006'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Added columns carry server defaults so existing rows are valid. Plain ADD COLUMN, not batch
    # mode: a batch copy of member would drop the table other tables' foreign keys point at.
    op.add_column('member', sa.Column('failed_sign_ins', sa.Integer(), server_default='0', nullable=False))
    op.add_column('member', sa.Column('locked_until', lms.db.UTCDateTime(), nullable=True))
    op.add_column('member', sa.Column('must_change_password', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    op.add_column('member', sa.Column('password_changed_at', lms.db.UTCDateTime(), nullable=True))

    op.create_table('sign_in_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('created_at', lms.db.UTCDateTime(), nullable=False),
    sa.Column('last_seen_at', lms.db.UTCDateTime(), nullable=False),
    sa.Column('revoked_at', lms.db.UTCDateTime(), nullable=True),
    sa.Column('revoked_reason', sa.String(length=20), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], name=op.f('fk_sign_in_session_member_id_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_sign_in_session_token_hash'))
    )
    with op.batch_alter_table('sign_in_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_in_session_member_id'), ['member_id'], unique=False)

    # A plain CREATE INDEX: audit_event is append-only (triggers), and an index leaves rows alone.
    op.create_index('ix_audit_event_action_ip_at', 'audit_event', ['action', 'ip', 'at'], unique=False)
    op.create_index('ix_audit_event_target', 'audit_event', ['target'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_event_target', table_name='audit_event')
    op.drop_index('ix_audit_event_action_ip_at', table_name='audit_event')
    with op.batch_alter_table('sign_in_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_in_session_member_id'))
    op.drop_table('sign_in_session')
    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.drop_column('password_changed_at')
        batch_op.drop_column('must_change_password')
        batch_op.drop_column('locked_until')
        batch_op.drop_column('failed_sign_ins')
