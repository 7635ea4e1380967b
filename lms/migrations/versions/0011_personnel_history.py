"""effective-dated personnel history: status, unit, shift, rank and supervisor as they stood

Revision ID: 0011
Revises: 0010

``personnel_change`` holds one row per personnel attribute a member takes from a date; rows are
only appended (triggers refuse UPDATE and DELETE, as for the records). Rosters and evidence "as of
D" read the latest row of each attribute up to D; the member row keeps the values in force today,
so the roster of now never reads this table.

Backfill: every member gets one row per attribute holding the value the member row has now, all
effective on one date, "when records begin": the day before the earliest thing Roll Call
recorded (a cycle, an assignment, an acknowledgment, a member row) or the earliest hire date,
whichever is earlier. Before this revision every as-of roster read today's values for every past
date; the current values are also the best Roll Call knows of the past, so they are dated back to
before anything a roster can show. A per-member hire date was rejected: hire dates are often
missing, and a rehired member's hire date falls after the assignments and signatures of their
first service, which would then drop out of past rosters. The rule that reads the history also
takes a member's first recorded values for any date before them (lms.services.personnel_history),
so this migration changes no as-of roster; only changes made after it show in the past.

``personnel_upload.effective`` keeps the effective date an administrator gave with a web upload
between preview and apply (None: the day it is applied).
"""
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa
from alembic import op

import lms.db
from lms.migrate_helpers import append_only, drop_append_only

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

FIELDS = {"status": "status", "unit": "unit", "shift": "shift", "rank": "rank"}


def _records_begin(connection, today: date) -> date:
    """The earliest hire date, or the day before the earliest recorded moment, or today."""
    candidates = [today]
    for table, column, kind in (("member", "hire_date", sa.Date()), ("member", "created_at", lms.db.UTCDateTime()),
                                ("cycle", "created_at", lms.db.UTCDateTime()),
                                ("assignment", "assigned_at", lms.db.UTCDateTime()),
                                ("acknowledgment", "signed_at", lms.db.UTCDateTime())):
        col = sa.column(column, kind)
        value = connection.scalar(sa.select(sa.func.min(col)).select_from(sa.table(table)))
        if value is None:
            continue
        # A UTC moment may fall on the next or previous local date: a day earlier covers both.
        candidates.append(value if kind.__class__ is sa.Date else value.date() - timedelta(days=1))
    return min(candidates)


def upgrade() -> None:
    op.create_table(
        'personnel_change',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('field', sa.String(length=20), nullable=False),
        sa.Column('value', sa.String(length=80), nullable=True),
        sa.Column('supervisor_id', sa.Integer(), nullable=True),
        sa.Column('effective', sa.Date(), nullable=False),
        sa.Column('recorded_at', lms.db.UTCDateTime(), nullable=False),
        sa.Column('recorded_on', sa.Date(), nullable=False),
        sa.Column('recorded_by_id', sa.Integer(), nullable=True),
        sa.Column('source', sa.String(length=255), nullable=False),
        sa.CheckConstraint("field IN ('status', 'unit', 'shift', 'rank', 'supervisor')",
                           name=op.f('ck_personnel_change_field')),
        sa.ForeignKeyConstraint(['member_id'], ['member.id'], name=op.f('fk_personnel_change_member_id_member')),
        sa.ForeignKeyConstraint(['supervisor_id'], ['member.id'],
                                name=op.f('fk_personnel_change_supervisor_id_member')),
        sa.ForeignKeyConstraint(['recorded_by_id'], ['member.id'],
                                name=op.f('fk_personnel_change_recorded_by_id_member')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_personnel_change')),
    )
    op.create_index('ix_personnel_change_member_id_field_effective', 'personnel_change',
                    ['member_id', 'field', 'effective', 'id'])
    op.add_column('personnel_upload', sa.Column('effective', sa.Date(), nullable=True))

    connection = op.get_bind()
    now = datetime.now(timezone.utc)
    begin = _records_begin(connection, now.date())
    params = {"begin": begin, "now": now, "today": now.date()}
    types = (sa.bindparam("begin", type_=sa.Date()), sa.bindparam("today", type_=sa.Date()),
             sa.bindparam("now", type_=lms.db.UTCDateTime()))
    for field, column in FIELDS.items():
        connection.execute(sa.text(
            "INSERT INTO personnel_change (member_id, field, value, supervisor_id, effective, recorded_at,"
            " recorded_on, recorded_by_id, source)"
            f" SELECT id, '{field}', {column}, NULL, :begin, :now, :today, NULL, 'baseline' FROM member"
            " ORDER BY id").bindparams(*types), params)
    connection.execute(sa.text(
        "INSERT INTO personnel_change (member_id, field, value, supervisor_id, effective, recorded_at,"
        " recorded_on, recorded_by_id, source)"
        " SELECT id, 'supervisor', NULL, supervisor_id, :begin, :now, :today, NULL, 'baseline' FROM member"
        " ORDER BY id").bindparams(*types), params)
    append_only(["personnel_change"])


def downgrade() -> None:
    drop_append_only(["personnel_change"])
    with op.batch_alter_table('personnel_upload') as batch:
        batch.drop_column('effective')
    op.drop_index('ix_personnel_change_member_id_field_effective', table_name='personnel_change')
    op.drop_table('personnel_change')
