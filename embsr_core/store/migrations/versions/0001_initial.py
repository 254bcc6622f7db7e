"""Initial schema: datasets, operations, items, sessions, events, runs, metrics, loss, ranks.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('datasets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('source_format', sa.String(length=40), nullable=False),
    sa.Column('source_path', sa.Text(), nullable=True),
    sa.Column('imported_at', sa.DateTime(), nullable=False),
    sa.Column('n_sessions', sa.Integer(), nullable=False),
    sa.Column('n_items', sa.Integer(), nullable=False),
    sa.Column('n_operations', sa.Integer(), nullable=False),
    sa.Column('n_events', sa.BigInteger(), nullable=False),
    sa.Column('import_report', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('events',
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('operation_code', sa.Integer(), nullable=False),
    sa.Column('timestamp', sa.Float(), nullable=False),
    sa.Column('dwell', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('dataset_id', 'session_id', 'position'),
    sqlite_with_rowid=False
    )
    op.create_table('items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('category', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dataset_id', 'external_id', name='uq_items_dataset_external')
    )
    op.create_table('operations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dataset_id', 'code', name='uq_operations_dataset_code'),
    sa.UniqueConstraint('dataset_id', 'name', name='uq_operations_dataset_name')
    )
    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('model_name', sa.String(length=80), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('device', sa.String(length=120), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('error_text', sa.Text(), nullable=True),
    sa.Column('epochs_done', sa.Integer(), nullable=False),
    sa.Column('best_epoch', sa.Integer(), nullable=True),
    sa.Column('checkpoint_path', sa.Text(), nullable=True),
    sa.Column('checkpoint_sha256', sa.String(length=64), nullable=True),
    sa.Column('best_checkpoint_path', sa.Text(), nullable=True),
    sa.Column('best_checkpoint_sha256', sa.String(length=64), nullable=True),
    sa.Column('prep_hash', sa.String(length=64), nullable=True),
    sa.Column('search_group', sa.String(length=80), nullable=True),
    sa.Column('is_best_trial', sa.Boolean(), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('host', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_runs_dataset_id'), 'runs', ['dataset_id'], unique=False)
    op.create_index(op.f('ix_runs_model_name'), 'runs', ['model_name'], unique=False)
    op.create_index(op.f('ix_runs_search_group'), 'runs', ['search_group'], unique=False)
    op.create_index(op.f('ix_runs_status'), 'runs', ['status'], unique=False)
    op.create_table('sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dataset_id', 'external_id', name='uq_sessions_dataset_external')
    )
    op.create_table('epoch_metrics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('split', sa.String(length=10), nullable=False),
    sa.Column('target_op', sa.String(length=10), nullable=False),
    sa.Column('metric', sa.String(length=20), nullable=False),
    sa.Column('k', sa.Integer(), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('wall_time', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'epoch', 'split', 'target_op', 'metric', 'k', name='uq_epoch_metric')
    )
    op.create_index(op.f('ix_epoch_metrics_run_id'), 'epoch_metrics', ['run_id'], unique=False)
    op.create_table('loss_series',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('loss', sa.Float(), nullable=False),
    sa.Column('wall_time', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'step')
    )
    op.create_table('run_ranks',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('split', sa.String(length=10), nullable=False),
    sa.Column('target_op', sa.String(length=10), nullable=False),
    sa.Column('prep_hash', sa.String(length=64), nullable=True),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('ranks', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'split', 'target_op')
    )


def downgrade() -> None:


    op.drop_table('run_ranks')
    op.drop_table('loss_series')
    op.drop_index(op.f('ix_epoch_metrics_run_id'), table_name='epoch_metrics')
    op.drop_table('epoch_metrics')
    op.drop_table('sessions')
    op.drop_index(op.f('ix_runs_status'), table_name='runs')
    op.drop_index(op.f('ix_runs_search_group'), table_name='runs')
    op.drop_index(op.f('ix_runs_model_name'), table_name='runs')
    op.drop_index(op.f('ix_runs_dataset_id'), table_name='runs')
    op.drop_table('runs')
    op.drop_table('operations')
    op.drop_table('items')
    op.drop_table('events')
    op.drop_table('datasets')
