"""plan reason: which rule of the channel plan decided a document's channels

Revision ID: 0005
Revises: 0004

The channel plan names the rule that chose a document's channels (e.g. "paper-preference",
a tenant's "email-first"); Compose returns it, and GetDocument, a replayed Compose and an
index rebuilt from the objects' metadata must say the same. `channel_plan` keeps only the
channels ("print,sms"); this column keeps the reason (NULL for rows indexed before it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("plan_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("documents", "plan_reason")
