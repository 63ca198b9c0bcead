"""The built-in print provider (server.delivery.providers.printing): a piece the print
settings cannot make is a permanent failure of its delivery, not a provider error."""

from __future__ import annotations

from sqlalchemy import select

from archive.index import DocumentIndex
from server.delivery.model import Failed, Outgoing
from server.delivery.providers.base import ProviderContext
from server.delivery.providers.printing import PrintQueueProvider
from server.printing.queue import PrintQueue, PrintSettings, print_pieces


def outgoing(**piece) -> Outgoing:
    return Outgoing(
        delivery_id="d1", tenant="demo", document_id="doc1", customer_id="c1",
        channel="print", recipient="", content=b"", media_type="application/pdf",
        message_id="d1", attempt=1,
        details={"archive_key": "demo/c1/2026/doc1/print.pdf", "sha256": "0" * 64,
                 "print": {"pages": 1, "envelope": "C5", "country": "NO",
                           "postal_code": "0150", **piece}})


def test_a_piece_the_print_settings_cannot_make_fails_its_delivery(tmp_path):
    index = DocumentIndex(f"sqlite:///{tmp_path / 'index.db'}")
    queue = PrintQueue(index, PrintSettings.from_dict({}))
    queue.create_schema()
    provider = PrintQueueProvider("print", {"type": "print"},
                                  ProviderContext(state_dir=tmp_path,
                                                  services={"print_queue": queue}))
    # an insert the catalogue lacks (a fallback print, or settings changed since the
    # document was archived): no print shop can make it, however often it is retried
    result = provider.send(outgoing(inserts=["no-such-insert"],
                                    insert_rules=[["no-such-insert", "autumn-campaign"]]))
    assert isinstance(result, Failed), result
    assert ("rule 'autumn-campaign' chose insert 'no-such-insert', which is not in the insert "
            "catalogue") in result.reason  # the rule to fix, named as at archive time
    # too thick for every envelope of the profile
    result = provider.send(outgoing(pages=4000))
    assert isinstance(result, Failed), result
    with index.engine.connect() as conn:
        assert conn.execute(select(print_pieces)).all() == []
    index.close()
