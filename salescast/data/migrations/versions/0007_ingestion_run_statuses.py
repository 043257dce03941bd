"""data: ingestion runs are recorded as running before they load, and may end interrupted

A run's row is now committed as `running` before its load starts, and a run whose process died is marked
`interrupted` (salescast.data.runs). The statuses become a check constraint, so that no writer can store
one that readers do not know.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 16:00:00
"""

from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

STATUSES = "status IN ('running', 'succeeded', 'refused', 'failed', 'interrupted')"


def upgrade() -> None:
    with op.batch_alter_table('ingestion_runs', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_ingestion_runs_status'), STATUSES)


def downgrade() -> None:
    # Earlier releases never leave a run `running` or `interrupted`: what such a run was, for them, is failed.
    op.execute(
        "UPDATE ingestion_runs SET status = 'failed' WHERE status IN ('running', 'interrupted')"
    )
    with op.batch_alter_table('ingestion_runs', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_ingestion_runs_status'), type_='check')
