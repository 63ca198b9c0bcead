"""skipped channels: the channels a document's plan left out, with the reason

Revision ID: 0004
Revises: 0003

A channel that cannot carry a document (an SMS that fits in no variant, an email over the
clipping limit, an e-invoice the Peppol rules refuse) is left out of its plan instead of
failing it; the reasons are kept with the document (JSON text, NULL when none) so that
GetDocument and support can say why. Older rows have none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("skipped_channels", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("documents", "skipped_channels")
