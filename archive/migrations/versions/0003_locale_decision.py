"""locale decision: how each document's locale was decided

Revision ID: 0003
Revises: 0002

Compose decides a document's locale from the request, the data's own `locale` field, the
layout's rules (the currency, the customer's country) or the layout's default
(server/compose/locales.py). The `locale` column says which locale; `locale_decision` says
why, e.g. "rule: $.currency = SEK -> SE", for customer service and GetDocument. Rows indexed
before this revision have none (NULL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("locale_decision", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("documents", "locale_decision")
