"""single sign-on: how each session and each signature was authenticated; SAML replay store

Revision ID: 0016
Revises: 0014

``sign_in_session`` records how its member signed in (password, oidc or saml, and the identity
provider), so signing asks for the same kind of proof again.

``acknowledgment`` gains ``auth_method``, ``auth_provider`` and ``authenticated_at``: how the signer
proved who they were at signing (the password re-entered, or a fresh sign-in at the identity
provider and when it happened). Acknowledgments are append-only records in a hash chain, and every
record written before this revision must keep verifying. So the three columns are added as NULL
(ADD COLUMN writes no row and fires no UPDATE trigger), and ``canonical_acknowledgment`` covers them
only for a record whose ``auth_method`` is set: an old record hashes exactly as before, and every
new record is written with ``auth_method`` set, so its hash covers all three. Clearing them on a new
record (which the triggers refuse anyway) would change what its hash covers, so it would not
verify.

``seen_assertion`` holds the IDs of SAML assertions already used, until they expire, so that a
captured assertion cannot be posted a second time.
"""
import sqlalchemy as sa
from alembic import op

import lms.db

revision = '0016'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: a batch copy would drop tables others point at, and the
    # acknowledgment table's triggers refuse the copy's DELETE.
    op.add_column('sign_in_session', sa.Column('auth_method', sa.String(length=20), nullable=True))
    op.add_column('sign_in_session', sa.Column('auth_provider', sa.String(length=255), nullable=True))
    op.add_column('acknowledgment', sa.Column('auth_method', sa.String(length=20), nullable=True))
    op.add_column('acknowledgment', sa.Column('auth_provider', sa.String(length=255), nullable=True))
    op.add_column('acknowledgment', sa.Column('authenticated_at', lms.db.UTCDateTime(), nullable=True))
    op.create_table('seen_assertion',
    sa.Column('issuer', sa.String(length=255), nullable=False),
    sa.Column('assertion_id', sa.String(length=255), nullable=False),
    sa.Column('expires_at', lms.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('issuer', 'assertion_id', name=op.f('pk_seen_assertion'))
    )
    op.create_index(op.f('ix_seen_assertion_expires_at'), 'seen_assertion', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_seen_assertion_expires_at'), table_name='seen_assertion')
    op.drop_table('seen_assertion')
    # Dropping columns of the append-only acknowledgment table is a schema change, not a row
    # change; SQLite 3.35+ drops a column in place.
    for column in ('authenticated_at', 'auth_provider', 'auth_method'):
        op.drop_column('acknowledgment', column)
    for column in ('auth_provider', 'auth_method'):
        op.drop_column('sign_in_session', column)
