"""documents and outputs, as the first `create_all` made them

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from archive.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("document_id", sa.String(128), nullable=False),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("layout_ref", sa.String(200), nullable=False),
        sa.Column("locale", sa.String(35), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("input_sha256", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("channel_plan", sa.Text(), nullable=False),
        sa.Column("corrects_document_id", sa.String(128), nullable=True),
        sa.Column("retain_until", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("tenant", "document_id", name="pk_documents"),
        sa.UniqueConstraint("tenant", "idempotency_key", name="uq_documents_idempotency_key"),
    )
    op.create_index(
        "ix_documents_customer", "documents",
        ["tenant", "customer_id", sa.text("created_at DESC"), "document_id"],
    )
    op.create_table(
        "outputs",
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("document_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("media_type", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "document_id", "channel", name="pk_outputs"),
        sa.ForeignKeyConstraint(
            ["tenant", "document_id"], ["documents.tenant", "documents.document_id"],
            name="fk_outputs_document", ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("outputs")
    op.drop_table("documents")
