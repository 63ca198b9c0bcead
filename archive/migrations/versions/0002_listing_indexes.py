"""listing indexes: keyset pagination newest first, correction chains, filtered listings

Revision ID: 0002
Revises: 0001

`ix_documents_customer` had `created_at DESC, document_id ASC`, which cannot serve
`ORDER BY created_at DESC, document_id DESC` (the portal's keyset order) without a sort. The
replacement is all ascending: PostgreSQL and SQLite scan it backwards for the newest-first
order and use it for the row comparison `(created_at, document_id) < (:c, :d)`. Listings
filtered by kind get their own index so a rare kind does not walk a customer's whole history.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_documents_customer", table_name="documents")
    op.create_index(
        "ix_documents_customer_created", "documents",
        ["tenant", "customer_id", "created_at", "document_id"],
    )
    op.create_index(
        "ix_documents_customer_kind_created", "documents",
        ["tenant", "customer_id", "kind", "created_at", "document_id"],
    )
    op.create_index("ix_documents_corrects", "documents", ["tenant", "corrects_document_id"])


def downgrade() -> None:
    op.drop_index("ix_documents_corrects", table_name="documents")
    op.drop_index("ix_documents_customer_kind_created", table_name="documents")
    op.drop_index("ix_documents_customer_created", table_name="documents")
    op.create_index(
        "ix_documents_customer", "documents",
        ["tenant", "customer_id", "created_at", "document_id"],
    )
