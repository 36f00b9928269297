"""conac_cache: CONAC's badge scripts, verification pages and images kept across scans

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'conac_cache',
        sa.Column('url_key', sa.String(length=64), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('status', sa.Integer(), nullable=False),
        sa.Column('headers', sa.JSON(), nullable=False),
        sa.Column('body_blob', sa.String(length=80), nullable=False),
        sa.Column('body_size', sa.Integer(), nullable=False),
        sa.Column('etag', sa.String(length=300), nullable=False),
        sa.Column('last_modified', sa.String(length=100), nullable=False),
        sa.Column('fetched_at', storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column('validated_at', storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('url_key', name=op.f('pk_conac_cache')),
    )


def downgrade() -> None:
    op.drop_table('conac_cache')
