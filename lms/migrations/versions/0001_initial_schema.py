"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 22:11:36.849442
"""
import sqlalchemy as sa
from alembic import op

import lms.db
from lms.migrate_helpers import append_only, drop_append_only

# Records are never updated or deleted, by any route or by hand: the database refuses it.
APPEND_ONLY_TABLES = ["acknowledgment", "receipt", "audit_event"]


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('chain_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chain_head'))
    )
    op.create_table('member',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('badge', sa.String(length=20), nullable=False),
    sa.Column('first_name', sa.String(length=80), nullable=False),
    sa.Column('last_name', sa.String(length=80), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('rank', sa.String(length=40), nullable=True),
    sa.Column('unit', sa.String(length=80), nullable=True),
    sa.Column('shift', sa.String(length=40), nullable=True),
    sa.Column('supervisor_id', sa.Integer(), nullable=True),
    sa.Column('hire_date', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('created_at', lms.db.UTCDateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("status IN ('active', 'leave', 'separated')", name=op.f('ck_member_status')),
    sa.ForeignKeyConstraint(['supervisor_id'], ['member.id'], name=op.f('fk_member_supervisor_id_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member')),
    sa.UniqueConstraint('badge', name=op.f('uq_member_badge'))
    )
    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_unit'), ['unit'], unique=False)

    op.create_table('policy',
    sa.Column('id', sa.String(length=20), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('department', sa.String(length=200), nullable=False),
    sa.Column('folder', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy'))
    )
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', lms.db.UTCDateTime(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('target', sa.String(length=120), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['member.id'], name=op.f('fk_audit_event_actor_id_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_at'), ['at'], unique=False)

    op.create_table('cycle',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('grace_days', sa.Integer(), nullable=False),
    sa.Column('audience', sa.JSON(), nullable=False),
    sa.Column('created_at', lms.db.UTCDateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['member.id'], name=op.f('fk_cycle_created_by_id_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cycle')),
    sa.UniqueConstraint('year', name=op.f('uq_cycle_year'))
    )
    op.create_table('member_role',
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.CheckConstraint("role IN ('officer', 'coordinator', 'hr', 'admin')", name=op.f('ck_member_role_role')),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], name=op.f('fk_member_role_member_id_member')),
    sa.PrimaryKeyConstraint('member_id', 'role', name=op.f('pk_member_role'))
    )
    op.create_table('policy_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.String(length=20), nullable=False),
    sa.Column('effective', sa.Date(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('text_sha256', sa.String(length=64), nullable=False),
    sa.Column('attestation', sa.Text(), nullable=False),
    sa.Column('pass_mark', sa.Integer(), nullable=False),
    sa.Column('draw_size', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('minimum_per_topic', sa.JSON(), nullable=False),
    sa.Column('topics', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['policy_id'], ['policy.id'], name=op.f('fk_policy_version_policy_id_policy')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_version')),
    sa.UniqueConstraint('policy_id', 'effective', name=op.f('uq_policy_version_policy_id_effective'))
    )
    op.create_table('assignment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cycle_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('policy_version_id', sa.Integer(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('assigned_at', lms.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['cycle_id'], ['cycle.id'], name=op.f('fk_assignment_cycle_id_cycle')),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], name=op.f('fk_assignment_member_id_member')),
    sa.ForeignKeyConstraint(['policy_version_id'], ['policy_version.id'], name=op.f('fk_assignment_policy_version_id_policy_version')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assignment')),
    sa.UniqueConstraint('cycle_id', 'member_id', 'policy_version_id', name=op.f('uq_assignment_cycle_id_member_id_policy_version_id'))
    )
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assignment_member_id'), ['member_id'], unique=False)

    op.create_table('cycle_policy',
    sa.Column('cycle_id', sa.Integer(), nullable=False),
    sa.Column('policy_version_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['cycle_id'], ['cycle.id'], name=op.f('fk_cycle_policy_cycle_id_cycle')),
    sa.ForeignKeyConstraint(['policy_version_id'], ['policy_version.id'], name=op.f('fk_cycle_policy_policy_version_id_policy_version')),
    sa.PrimaryKeyConstraint('cycle_id', 'policy_version_id', name=op.f('pk_cycle_policy'))
    )
    op.create_table('lesson',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=120), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('sections', sa.JSON(), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('body_markdown', sa.Text(), nullable=False),
    sa.Column('retired', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['policy_version.id'], name=op.f('fk_lesson_version_id_policy_version')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lesson')),
    sa.UniqueConstraint('version_id', 'slug', name=op.f('uq_lesson_version_id_slug'))
    )
    op.create_table('question',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('topic', sa.String(length=40), nullable=False),
    sa.Column('cites', sa.JSON(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('scenario', sa.Text(), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('retired', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['policy_version.id'], name=op.f('fk_question_version_id_policy_version')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_question')),
    sa.UniqueConstraint('version_id', 'key', name=op.f('uq_question_version_id_key'))
    )
    with op.batch_alter_table('question', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_question_version_id'), ['version_id'], unique=False)

    op.create_table('lesson_progress',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('lesson_id', sa.Integer(), nullable=False),
    sa.Column('completed_at', lms.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignment.id'], name=op.f('fk_lesson_progress_assignment_id_assignment')),
    sa.ForeignKeyConstraint(['lesson_id'], ['lesson.id'], name=op.f('fk_lesson_progress_lesson_id_lesson')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lesson_progress')),
    sa.UniqueConstraint('assignment_id', 'lesson_id', name=op.f('uq_lesson_progress_assignment_id_lesson_id'))
    )
    with op.batch_alter_table('lesson_progress', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lesson_progress_assignment_id'), ['assignment_id'], unique=False)

    op.create_table('question_option',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('correct', sa.Boolean(), nullable=False),
    sa.Column('why', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['question_id'], ['question.id'], name=op.f('fk_question_option_question_id_question')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_question_option')),
    sa.UniqueConstraint('question_id', 'position', name=op.f('uq_question_option_question_id_position'))
    )
    op.create_table('quiz_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('started_at', lms.db.UTCDateTime(), nullable=False),
    sa.Column('submitted_at', lms.db.UTCDateTime(), nullable=True),
    sa.Column('correct_count', sa.Integer(), nullable=True),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('passed', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignment.id'], name=op.f('fk_quiz_attempt_assignment_id_assignment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quiz_attempt')),
    sa.UniqueConstraint('assignment_id', 'number', name=op.f('uq_quiz_attempt_assignment_id_number'))
    )
    with op.batch_alter_table('quiz_attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quiz_attempt_assignment_id'), ['assignment_id'], unique=False)

    op.create_table('acknowledgment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('cycle_id', sa.Integer(), nullable=False),
    sa.Column('policy_version_id', sa.Integer(), nullable=False),
    sa.Column('quiz_attempt_id', sa.Integer(), nullable=False),
    sa.Column('badge', sa.String(length=20), nullable=False),
    sa.Column('printed_name', sa.String(length=200), nullable=False),
    sa.Column('policy_ref', sa.String(length=20), nullable=False),
    sa.Column('policy_title', sa.String(length=200), nullable=False),
    sa.Column('policy_effective', sa.Date(), nullable=False),
    sa.Column('text_sha256', sa.String(length=64), nullable=False),
    sa.Column('statement', sa.Text(), nullable=False),
    sa.Column('signed_at', lms.db.UTCDateTime(), nullable=False),
    sa.Column('signed_at_local', sa.String(length=40), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('signed_from_ip', sa.String(length=64), nullable=False),
    sa.Column('user_agent', sa.String(length=512), nullable=False),
    sa.Column('quiz_attempt_number', sa.Integer(), nullable=False),
    sa.Column('quiz_score', sa.Integer(), nullable=False),
    sa.Column('verification_code', sa.String(length=20), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('record_hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignment.id'], name=op.f('fk_acknowledgment_assignment_id_assignment')),
    sa.ForeignKeyConstraint(['cycle_id'], ['cycle.id'], name=op.f('fk_acknowledgment_cycle_id_cycle')),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], name=op.f('fk_acknowledgment_member_id_member')),
    sa.ForeignKeyConstraint(['policy_version_id'], ['policy_version.id'], name=op.f('fk_acknowledgment_policy_version_id_policy_version')),
    sa.ForeignKeyConstraint(['quiz_attempt_id'], ['quiz_attempt.id'], name=op.f('fk_acknowledgment_quiz_attempt_id_quiz_attempt')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_acknowledgment')),
    sa.UniqueConstraint('assignment_id', 'generation', name=op.f('uq_acknowledgment_assignment_id_generation')),
    sa.UniqueConstraint('sequence', name=op.f('uq_acknowledgment_sequence')),
    sa.UniqueConstraint('verification_code', name=op.f('uq_acknowledgment_verification_code'))
    )
    with op.batch_alter_table('acknowledgment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_acknowledgment_member_id'), ['member_id'], unique=False)

    op.create_table('attempt_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('attempt_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.Integer(), nullable=False),
    sa.Column('option_order', sa.JSON(), nullable=False),
    sa.Column('chosen', sa.JSON(), nullable=True),
    sa.Column('correct', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['attempt_id'], ['quiz_attempt.id'], name=op.f('fk_attempt_item_attempt_id_quiz_attempt')),
    sa.ForeignKeyConstraint(['question_id'], ['question.id'], name=op.f('fk_attempt_item_question_id_question')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attempt_item')),
    sa.UniqueConstraint('attempt_id', 'position', name=op.f('uq_attempt_item_attempt_id_position'))
    )
    with op.batch_alter_table('attempt_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attempt_item_question_id'), ['question_id'], unique=False)

    op.create_table('receipt',
    sa.Column('acknowledgment_id', sa.Integer(), nullable=False),
    sa.Column('pdf', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['acknowledgment_id'], ['acknowledgment.id'], name=op.f('fk_receipt_acknowledgment_id_acknowledgment')),
    sa.PrimaryKeyConstraint('acknowledgment_id', name=op.f('pk_receipt'))
    )

    op.bulk_insert(sa.table("chain_head", sa.column("id"), sa.column("sequence"), sa.column("last_hash")),
                   [{"id": 1, "sequence": 0, "last_hash": "0" * 64}])
    append_only(APPEND_ONLY_TABLES)


def downgrade() -> None:
    drop_append_only(APPEND_ONLY_TABLES, drop_function=True)
    op.drop_table('receipt')
    with op.batch_alter_table('attempt_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attempt_item_question_id'))

    op.drop_table('attempt_item')
    with op.batch_alter_table('acknowledgment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_acknowledgment_member_id'))

    op.drop_table('acknowledgment')
    with op.batch_alter_table('quiz_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quiz_attempt_assignment_id'))

    op.drop_table('quiz_attempt')
    op.drop_table('question_option')
    with op.batch_alter_table('lesson_progress', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lesson_progress_assignment_id'))

    op.drop_table('lesson_progress')
    with op.batch_alter_table('question', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_question_version_id'))

    op.drop_table('question')
    op.drop_table('lesson')
    op.drop_table('cycle_policy')
    with op.batch_alter_table('assignment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assignment_member_id'))

    op.drop_table('assignment')
    op.drop_table('policy_version')
    op.drop_table('member_role')
    op.drop_table('cycle')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_at'))
        batch_op.drop_index(batch_op.f('ix_audit_event_action'))

    op.drop_table('audit_event')
    op.drop_table('policy')
    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_unit'))

    op.drop_table('member')
    op.drop_table('chain_head')
