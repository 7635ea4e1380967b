"""personnel uploads kept between preview and apply

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

import lms.db

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'personnel_upload',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('uploaded_by_id', sa.Integer(), nullable=False),
        sa.Column('uploaded_at', lms.db.UTCDateTime(), nullable=False),
        sa.Column('full_roster', sa.Boolean(), nullable=False),
        sa.Column('applied_at', lms.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['uploaded_by_id'], ['member.id'],
                                name=op.f('fk_personnel_upload_uploaded_by_id_member')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_personnel_upload')),
    )


def downgrade() -> None:
    op.drop_table('personnel_upload')
