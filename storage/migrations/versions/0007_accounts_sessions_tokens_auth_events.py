"""accounts: server-side sessions, API tokens with a lifetime, the append-only auth_event trail

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# auth_event is append-only: the database itself refuses to change or remove a row through UPDATE or
# DELETE, whoever asks. (The table's owner can still drop the trigger or TRUNCATE: this guards against
# the application and its operators' SQL, not against the database superuser.)
_PG_FUNCTION = """
CREATE FUNCTION auth_event_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'auth_event is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql
"""
_PG_TRIGGER = """
CREATE TRIGGER auth_event_append_only BEFORE UPDATE OR DELETE ON auth_event
FOR EACH ROW EXECUTE FUNCTION auth_event_append_only()
"""
_SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER auth_event_no_update BEFORE UPDATE ON auth_event
    BEGIN SELECT RAISE(ABORT, 'auth_event is append-only: UPDATE refused'); END
    """,
    """
    CREATE TRIGGER auth_event_no_delete BEFORE DELETE ON auth_event
    BEGIN SELECT RAISE(ABORT, 'auth_event is append-only: DELETE refused'); END
    """,
)


def upgrade() -> None:
    op.create_table(
        'auth_session',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('csrf', sa.String(length=64), nullable=False),
        sa.Column('client', sa.String(length=100), nullable=False),
        sa.Column('created_at', storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column('ended_at', storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column('end_reason', sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'], ['app_user.id'], name=op.f('fk_auth_session_user_id_app_user'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_session')),
    )
    op.create_index(op.f('ix_auth_session_user_id'), 'auth_session', ['user_id'], unique=False)
    op.create_table(
        'api_token',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('label', sa.String(length=100), nullable=False),
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column('revoked_by', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'], ['app_user.id'], name=op.f('fk_api_token_user_id_app_user'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    )
    op.create_index(op.f('ix_api_token_user_id'), 'api_token', ['user_id'], unique=False)
    op.create_table(
        'auth_event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('user_name', sa.String(length=100), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('client', sa.String(length=100), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_event')),
    )
    op.create_index(op.f('ix_auth_event_at'), 'auth_event', ['at'], unique=False)
    op.create_index(op.f('ix_auth_event_kind'), 'auth_event', ['kind'], unique=False)
    op.create_index(op.f('ix_auth_event_user_name'), 'auth_event', ['user_name'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS auth_event_append_only ON auth_event')
        op.execute('DROP FUNCTION IF EXISTS auth_event_append_only()')
    else:
        op.execute('DROP TRIGGER IF EXISTS auth_event_no_update')
        op.execute('DROP TRIGGER IF EXISTS auth_event_no_delete')
    op.drop_index(op.f('ix_auth_event_user_name'), table_name='auth_event')
    op.drop_index(op.f('ix_auth_event_kind'), table_name='auth_event')
    op.drop_index(op.f('ix_auth_event_at'), table_name='auth_event')
    op.drop_table('auth_event')
    op.drop_index(op.f('ix_api_token_user_id'), table_name='api_token')
    op.drop_table('api_token')
    op.drop_index(op.f('ix_auth_session_user_id'), table_name='auth_session')
    op.drop_table('auth_session')
