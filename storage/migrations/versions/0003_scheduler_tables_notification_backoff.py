"""scheduler tables, notification backoff

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 14:58:04.660777
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _adopt_on_demand_tables() -> bool:
    """Before 0003 the scheduler created ``schedule_run``/``schedule_stage`` itself, with the same
    columns and unique keys but no foreign key to ``scan``. Keep their rows: add the missing key
    (a run whose scan is gone loses only the reference). True if the tables were there."""
    if not sa.inspect(op.get_bind()).has_table('schedule_run'):
        return False
    op.execute("UPDATE schedule_run SET scan_id = NULL WHERE scan_id IS NOT NULL"
               " AND scan_id NOT IN (SELECT id FROM scan)")
    # SQLite's batch mode rebuilds schedule_run (copy, drop, rename): the drop would cascade to the
    # stages, so they are kept aside and put back.
    cols = "id, run_id, stage, status, attempts, started_at, finished_at, detail, error"
    op.execute(f"CREATE TABLE _keep_schedule_stage AS SELECT {cols} FROM schedule_stage")
    with op.batch_alter_table('schedule_run', schema=None) as batch_op:
        batch_op.create_foreign_key(op.f('fk_schedule_run_scan_id_scan'), 'scan', ['scan_id'], ['id'],
                                    ondelete='SET NULL')
    op.execute(f"INSERT INTO schedule_stage ({cols}) SELECT {cols} FROM _keep_schedule_stage"
               " WHERE id NOT IN (SELECT id FROM schedule_stage)")
    op.drop_table('_keep_schedule_stage')
    return True


def upgrade() -> None:
    if _adopt_on_demand_tables():
        _add_backoff()
        return
    op.create_table('schedule_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_name', sa.String(length=100), nullable=False),
    sa.Column('scheduled_for', storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('scan_id', sa.Integer(), nullable=True),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('started_at', storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['scan_id'], ['scan.id'], name=op.f('fk_schedule_run_scan_id_scan'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedule_run')),
    sa.UniqueConstraint('job_name', 'scheduled_for', name=op.f('uq_schedule_run_job_name_scheduled_for'))
    )
    op.create_table('schedule_stage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('started_at', storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['schedule_run.id'], name=op.f('fk_schedule_stage_run_id_schedule_run'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedule_stage')),
    sa.UniqueConstraint('run_id', 'stage', name=op.f('uq_schedule_stage_run_id_stage'))
    )
    _add_backoff()


def _add_backoff() -> None:
    # NULL: no backoff pending (new messages, and those that never failed).
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_attempt_at', storage.types.UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_column('next_attempt_at')

    op.drop_table('schedule_stage')
    op.drop_table('schedule_run')
