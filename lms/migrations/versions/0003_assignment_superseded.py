"""assignment superseded by a later policy version

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

import lms.db

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN: a batch copy would drop a table that other tables' foreign keys point at.
    op.add_column('assignment', sa.Column('superseded_at', lms.db.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('assignment') as batch:
        batch.drop_column('superseded_at')
