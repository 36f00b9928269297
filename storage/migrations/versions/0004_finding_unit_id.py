"""finding.unit_id: unit-level findings (a unit holding no Chinese domain)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('finding', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unit_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_finding_unit_id'), ['unit_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_finding_unit_id_unit'), 'unit', ['unit_id'], ['id'],
                                    ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('finding', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_finding_unit_id_unit'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_finding_unit_id'))
        batch_op.drop_column('unit_id')
