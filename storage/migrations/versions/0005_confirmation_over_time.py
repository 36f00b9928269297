"""confirmation over time: finding.first_seen_at / visits and the finding_streak table

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('finding', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_seen_at', storage.types.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('visits', sa.Integer(), nullable=False, server_default='1'))
    op.create_table(
        'finding_streak',
        sa.Column('subject', sa.String(length=40), nullable=False),
        sa.Column('check', sa.String(length=40), nullable=False),
        sa.Column('status', sa.String(length=8), nullable=False),
        sa.Column('first_seen_at', storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column('visits', sa.Integer(), nullable=False),
        sa.Column('last_visit', sa.String(length=60), nullable=False),
        sa.Column('updated_at', storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('subject', 'check', name=op.f('pk_finding_streak')),
    )


def downgrade() -> None:
    op.drop_table('finding_streak')
    with op.batch_alter_table('finding', schema=None) as batch_op:
        batch_op.drop_column('visits')
        batch_op.drop_column('first_seen_at')
