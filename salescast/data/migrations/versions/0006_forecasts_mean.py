"""registry: stored forecasts keep a mean beside their quantiles

Period totals add daily means rather than daily medians (see ConformalIntervals); rows stored before
this revision have no mean and are summed by their p50.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 07:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('forecasts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mean', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('forecasts', schema=None) as batch_op:
        batch_op.drop_column('mean')
