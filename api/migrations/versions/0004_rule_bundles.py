"""Rule-bundle distribution (api/distribution.py): bundles published with `dfft rules publish` and the active one,
which every `dfft serve` instance polls and converges on.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rule_bundles",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("ruleset_hash", sa.String(64), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("manifest", sa.Text, nullable=False),
        sa.Column("archive", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("published_by", sa.String(128), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_rule_bundles_ruleset_hash", "rule_bundles", ["ruleset_hash"])
    op.create_table(
        "rule_bundle_active",
        sa.Column("slot", sa.String(16), primary_key=True),
        sa.Column("bundle_id", sa.Integer, sa.ForeignKey("rule_bundles.id"), nullable=False),
        sa.Column("activated_by", sa.String(128), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rule_bundle_active")
    op.drop_table("rule_bundles")
