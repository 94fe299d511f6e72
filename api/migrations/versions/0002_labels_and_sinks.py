"""Caller labels on decisions (a column, and a table for the `?label=` filter); decision-log sink cursors.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as b:
        b.add_column(sa.Column("labels", sa.Text, nullable=True))
    op.create_table(
        "decision_labels",
        sa.Column("decision_id", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )
    op.create_index("ix_decision_labels_key_value", "decision_labels", ["key", "value"])
    op.create_table(
        "sink_cursors",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sink_cursors")
    op.drop_index("ix_decision_labels_key_value", table_name="decision_labels")
    op.drop_table("decision_labels")
    with op.batch_alter_table("decisions") as b:
        b.drop_column("labels")
