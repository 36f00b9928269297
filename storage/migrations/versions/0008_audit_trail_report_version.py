"""audit trail that lasts (append-only audit_event with triggers), annual report version

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_REFUSAL = "audit_event is append-only"


def upgrade() -> None:
    with op.batch_alter_table('annual_report', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))
    op.create_table(
        'audit_event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('role', sa.String(length=12), nullable=False),
        sa.Column('via', sa.String(length=10), nullable=False),
        sa.Column('client', sa.String(length=200), nullable=False),
        sa.Column('report_id', sa.Integer(), nullable=True),
        sa.Column('unit_id', sa.Integer(), nullable=True),
        sa.Column('unit_name', sa.String(length=200), nullable=False),
        sa.Column('office_code', sa.String(length=12), nullable=False),
        sa.Column('year', sa.Integer(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=True),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event')),
        sa.UniqueConstraint('prev_hash', name=op.f('uq_audit_event_prev_hash')),
    )
    op.create_index(op.f('ix_audit_event_at'), 'audit_event', ['at'], unique=False)
    op.create_index(op.f('ix_audit_event_kind'), 'audit_event', ['kind'], unique=False)
    op.create_index(op.f('ix_audit_event_report_id'), 'audit_event', ['report_id'], unique=False)
    # Append-only, enforced by the database itself: whatever the client, an UPDATE or DELETE fails.
    # (TRUNCATE, an owner's operation like dropping the trigger, is left to the hash chain: the head
    # hash kept outside the database shows the trail was emptied or rewritten.)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            "CREATE FUNCTION audit_event_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{_REFUSAL}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_event_no_change BEFORE UPDATE OR DELETE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION audit_event_refuse()"
        )
    else:
        for what in ('UPDATE', 'DELETE'):
            op.execute(
                f"CREATE TRIGGER audit_event_no_{what.lower()} BEFORE {what} ON audit_event "
                f"BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_change ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS audit_event_refuse()")
    op.drop_index(op.f('ix_audit_event_report_id'), table_name='audit_event')
    op.drop_index(op.f('ix_audit_event_kind'), table_name='audit_event')
    op.drop_index(op.f('ix_audit_event_at'), table_name='audit_event')
    op.drop_table('audit_event')
    with op.batch_alter_table('annual_report', schema=None) as batch_op:
        batch_op.drop_column('version')
