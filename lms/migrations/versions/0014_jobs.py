"""background jobs: the job outbox, worker heartbeats, reminder schedules

Revision ID: 0014
Revises: 0013

New tables only, so the migration is the same on a populated database as on an empty one.
"""
import sqlalchemy as sa
from alembic import op

import lms.db

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), server_default='pending', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('max_attempts', sa.Integer(), server_default='5', nullable=False),
    sa.Column('run_after', lms.db.UTCDateTime(), nullable=False),
    sa.Column('locked_by', sa.String(length=120), nullable=True),
    sa.Column('locked_at', lms.db.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('progress_done', sa.Integer(), server_default='0', nullable=False),
    sa.Column('progress_total', sa.Integer(), nullable=True),
    sa.Column('created_at', lms.db.UTCDateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('finished_at', lms.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'running', 'done', 'failed')", name=op.f('ck_job_status')),
    sa.ForeignKeyConstraint(['created_by_id'], ['member.id'], name=op.f('fk_job_created_by_id_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job')),
    sa.UniqueConstraint('key', name=op.f('uq_job_key'))
    )
    op.create_index('ix_job_status_run_after', 'job', ['status', 'run_after'], unique=False)
    op.create_table('worker_heartbeat',
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('started_at', lms.db.UTCDateTime(), nullable=False),
    sa.Column('beat_at', lms.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_worker_heartbeat'))
    )
    op.create_table('reminder_schedule',
    sa.Column('cycle_id', sa.Integer(), nullable=False),
    sa.Column('days_before', sa.String(length=100), nullable=False),
    sa.Column('weekly_overdue', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('copy_supervisor', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('updated_at', lms.db.UTCDateTime(), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['cycle_id'], ['cycle.id'], name=op.f('fk_reminder_schedule_cycle_id_cycle')),
    sa.ForeignKeyConstraint(['updated_by_id'], ['member.id'], name=op.f('fk_reminder_schedule_updated_by_id_member')),
    sa.PrimaryKeyConstraint('cycle_id', name=op.f('pk_reminder_schedule'))
    )


def downgrade() -> None:
    op.drop_table('reminder_schedule')
    op.drop_table('worker_heartbeat')
    op.drop_index('ix_job_status_run_after', table_name='job')
    op.drop_table('job')
