"""capture.shots: marked screenshots of confirmed page-check failures (full page, crops, CONAC image)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('capture', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shots', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))


def downgrade() -> None:
    with op.batch_alter_table('capture', schema=None) as batch_op:
        batch_op.drop_column('shots')
