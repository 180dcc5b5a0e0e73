"""Initial schema: every table in backend/models as of the first release.

Revision ID: 0001_initial
Revises:
Create Date: 2026-12-03 23:48:36.028078
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import backend.core.money


revision: str = '0001_initial'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('emissionrun',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('cap', backend.core.money.Money(), nullable=False),
    sa.Column('emitted', backend.core.money.Money(), nullable=False),
    sa.Column('trigger', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_emissionrun_day'), 'emissionrun', ['day'], unique=True)
    op.create_table('user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('role', sa.Enum('client', 'worker_owner', 'admin', name='role'), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_user_email'), 'user', ['email'], unique=True)
    op.create_index(op.f('ix_user_role'), 'user', ['role'], unique=False)
    op.create_table('account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('user', 'pool', 'clearing', 'issuance', name='accountkind'), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('balance', backend.core.money.Money(), nullable=False),
    sa.Column('reserved', backend.core.money.Money(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id')
    )
    op.create_index(op.f('ix_account_kind'), 'account', ['kind'], unique=False)
    op.create_table('adminaction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('target_type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_adminaction_actor_user_id'), 'adminaction', ['actor_user_id'], unique=False)
    op.create_table('apikey',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('prefix', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('key_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('last_used_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('revoked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_apikey_key_hash'), 'apikey', ['key_hash'], unique=True)
    op.create_index(op.f('ix_apikey_user_id'), 'apikey', ['user_id'], unique=False)
    op.create_table('refreshtoken',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('family_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('rotated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('revoked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_refreshtoken_family_id'), 'refreshtoken', ['family_id'], unique=False)
    op.create_index(op.f('ix_refreshtoken_token_hash'), 'refreshtoken', ['token_hash'], unique=True)
    op.create_index(op.f('ix_refreshtoken_user_id'), 'refreshtoken', ['user_id'], unique=False)
    op.create_table('worker',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('owner_user_id', sa.Integer(), nullable=False),
    sa.Column('region', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('public_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('specs_json', sa.JSON(), nullable=False),
    sa.Column('status', sa.Enum('online', 'offline', 'draining', 'banned', name='workerstatus'), nullable=False),
    sa.Column('reputation', sa.Float(), nullable=False),
    sa.Column('estimated_latency_ms', sa.Float(), nullable=False),
    sa.Column('max_concurrency', sa.Integer(), nullable=False),
    sa.Column('verified_count', sa.Integer(), nullable=False),
    sa.Column('rejected_count', sa.Integer(), nullable=False),
    sa.Column('last_seen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('banned_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.ForeignKeyConstraint(['owner_user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_worker_name'), 'worker', ['name'], unique=True)
    op.create_index(op.f('ix_worker_owner_user_id'), 'worker', ['owner_user_id'], unique=False)
    op.create_index(op.f('ix_worker_status'), 'worker', ['status'], unique=False)
    op.create_table('job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_type', sa.Enum('embed', 'rank', name='jobtype'), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.Enum('queued', 'disputed', 'verified', 'failed', 'cancelled', name='jobstatus'), nullable=False),
    sa.Column('client_user_id', sa.Integer(), nullable=True),
    sa.Column('api_key_id', sa.Integer(), nullable=True),
    sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('is_audit', sa.Boolean(), nullable=False),
    sa.Column('is_demo', sa.Boolean(), nullable=False),
    sa.Column('expected_output', sa.JSON(), nullable=True),
    sa.Column('replicas_needed', sa.Integer(), nullable=False),
    sa.Column('price', backend.core.money.Money(), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('output', sa.JSON(), nullable=True),
    sa.Column('verification', sa.JSON(), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('deadline_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['api_key_id'], ['apikey.id'], ),
    sa.ForeignKeyConstraint(['client_user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_job_api_key_id'), 'job', ['api_key_id'], unique=False)
    op.create_index(op.f('ix_job_client_user_id'), 'job', ['client_user_id'], unique=False)
    op.create_index(op.f('ix_job_created_at'), 'job', ['created_at'], unique=False)
    op.create_index(op.f('ix_job_is_audit'), 'job', ['is_audit'], unique=False)
    op.create_index(op.f('ix_job_job_type'), 'job', ['job_type'], unique=False)
    op.create_index(op.f('ix_job_status'), 'job', ['status'], unique=False)
    op.create_table('workeruptime',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('worker_id', sa.Integer(), nullable=False),
    sa.Column('minute', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['worker_id'], ['worker.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('worker_id', 'minute')
    )
    op.create_index(op.f('ix_workeruptime_minute'), 'workeruptime', ['minute'], unique=False)
    op.create_index(op.f('ix_workeruptime_worker_id'), 'workeruptime', ['worker_id'], unique=False)
    op.create_table('assignment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('worker_id', sa.Integer(), nullable=False),
    sa.Column('nonce', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'running', 'submitted', 'accepted', 'rejected', 'expired', 'cancelled', name='assignmentstatus'), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('leased_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('lease_expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('submitted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('output', sa.JSON(), nullable=True),
    sa.Column('output_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('signature', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('error_message', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('metrics_json', sa.JSON(), nullable=True),
    sa.Column('similarity', sa.Float(), nullable=True),
    sa.Column('reject_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], ),
    sa.ForeignKeyConstraint(['worker_id'], ['worker.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job_id', 'worker_id')
    )
    op.create_index(op.f('ix_assignment_job_id'), 'assignment', ['job_id'], unique=False)
    op.create_index(op.f('ix_assignment_lease_expires_at'), 'assignment', ['lease_expires_at'], unique=False)
    op.create_index(op.f('ix_assignment_status'), 'assignment', ['status'], unique=False)
    op.create_index(op.f('ix_assignment_worker_id'), 'assignment', ['worker_id'], unique=False)
    op.create_table('ledgertransaction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('admin_credit', 'job_charge', 'pool_fee', 'worker_reward', 'refund', 'daily_emission', name='entrykind'), nullable=False),
    sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('worker_id', sa.Integer(), nullable=True),
    sa.Column('memo', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], ),
    sa.ForeignKeyConstraint(['worker_id'], ['worker.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_ledgertransaction_created_at'), 'ledgertransaction', ['created_at'], unique=False)
    op.create_index(op.f('ix_ledgertransaction_idempotency_key'), 'ledgertransaction', ['idempotency_key'], unique=True)
    op.create_index(op.f('ix_ledgertransaction_job_id'), 'ledgertransaction', ['job_id'], unique=False)
    op.create_index(op.f('ix_ledgertransaction_kind'), 'ledgertransaction', ['kind'], unique=False)
    op.create_index(op.f('ix_ledgertransaction_worker_id'), 'ledgertransaction', ['worker_id'], unique=False)
    op.create_table('ledgerentry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('transaction_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('amount', backend.core.money.Money(), nullable=False),
    sa.Column('kind', sa.Enum('admin_credit', 'job_charge', 'pool_fee', 'worker_reward', 'refund', 'daily_emission', name='entrykind'), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.ForeignKeyConstraint(['transaction_id'], ['ledgertransaction.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_ledgerentry_account_id'), 'ledgerentry', ['account_id'], unique=False)
    op.create_index(op.f('ix_ledgerentry_created_at'), 'ledgerentry', ['created_at'], unique=False)
    op.create_index(op.f('ix_ledgerentry_kind'), 'ledgerentry', ['kind'], unique=False)
    op.create_index(op.f('ix_ledgerentry_transaction_id'), 'ledgerentry', ['transaction_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_ledgerentry_transaction_id'), table_name='ledgerentry')
    op.drop_index(op.f('ix_ledgerentry_kind'), table_name='ledgerentry')
    op.drop_index(op.f('ix_ledgerentry_created_at'), table_name='ledgerentry')
    op.drop_index(op.f('ix_ledgerentry_account_id'), table_name='ledgerentry')
    op.drop_table('ledgerentry')
    op.drop_index(op.f('ix_ledgertransaction_worker_id'), table_name='ledgertransaction')
    op.drop_index(op.f('ix_ledgertransaction_kind'), table_name='ledgertransaction')
    op.drop_index(op.f('ix_ledgertransaction_job_id'), table_name='ledgertransaction')
    op.drop_index(op.f('ix_ledgertransaction_idempotency_key'), table_name='ledgertransaction')
    op.drop_index(op.f('ix_ledgertransaction_created_at'), table_name='ledgertransaction')
    op.drop_table('ledgertransaction')
    op.drop_index(op.f('ix_assignment_worker_id'), table_name='assignment')
    op.drop_index(op.f('ix_assignment_status'), table_name='assignment')
    op.drop_index(op.f('ix_assignment_lease_expires_at'), table_name='assignment')
    op.drop_index(op.f('ix_assignment_job_id'), table_name='assignment')
    op.drop_table('assignment')
    op.drop_index(op.f('ix_workeruptime_worker_id'), table_name='workeruptime')
    op.drop_index(op.f('ix_workeruptime_minute'), table_name='workeruptime')
    op.drop_table('workeruptime')
    op.drop_index(op.f('ix_job_status'), table_name='job')
    op.drop_index(op.f('ix_job_job_type'), table_name='job')
    op.drop_index(op.f('ix_job_is_audit'), table_name='job')
    op.drop_index(op.f('ix_job_created_at'), table_name='job')
    op.drop_index(op.f('ix_job_client_user_id'), table_name='job')
    op.drop_index(op.f('ix_job_api_key_id'), table_name='job')
    op.drop_table('job')
    op.drop_index(op.f('ix_worker_status'), table_name='worker')
    op.drop_index(op.f('ix_worker_owner_user_id'), table_name='worker')
    op.drop_index(op.f('ix_worker_name'), table_name='worker')
    op.drop_table('worker')
    op.drop_index(op.f('ix_refreshtoken_user_id'), table_name='refreshtoken')
    op.drop_index(op.f('ix_refreshtoken_token_hash'), table_name='refreshtoken')
    op.drop_index(op.f('ix_refreshtoken_family_id'), table_name='refreshtoken')
    op.drop_table('refreshtoken')
    op.drop_index(op.f('ix_apikey_user_id'), table_name='apikey')
    op.drop_index(op.f('ix_apikey_key_hash'), table_name='apikey')
    op.drop_table('apikey')
    op.drop_index(op.f('ix_adminaction_actor_user_id'), table_name='adminaction')
    op.drop_table('adminaction')
    op.drop_index(op.f('ix_account_kind'), table_name='account')
    op.drop_table('account')
    op.drop_index(op.f('ix_user_role'), table_name='user')
    op.drop_index(op.f('ix_user_email'), table_name='user')
    op.drop_table('user')
    op.drop_index(op.f('ix_emissionrun_day'), table_name='emissionrun')
    op.drop_table('emissionrun')
    # PostgreSQL keeps enum types after their tables are dropped.
    if op.get_bind().dialect.name == "postgresql":
        for name in ("assignmentstatus", "jobstatus", "jobtype", "workerstatus", "entrykind", "accountkind",
                     "role"):
            op.execute(f'DROP TYPE IF EXISTS "{name}"')
