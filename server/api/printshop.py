"""`kanal.v1.PrintShop`: print batches <-> proto, scoped to the caller's print shop.

A print-shop caller (`printshop:<id>`) lists, fetches and acknowledges only its own print
shop's batches of its tenant; an operator (`admin`) sees every print shop of its tenant and
may close the open groups now. Another tenant's or another print shop's batch is NOT_FOUND,
like an unknown one (ids leak nothing). Listing only reads: batches close by size and
cut-off in the server's background (server.printing.closer), or on request (close).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import grpc

from kanal.v1 import printshop_pb2 as pb
from kanal.v1 import printshop_pb2_grpc
from server.auth import current_caller
from server.errors import InvalidInput
from server.printing.batches import BatchInfo, BatchService

STATES = {"ready": pb.PRINT_BATCH_STATE_READY, "fetched": pb.PRINT_BATCH_STATE_FETCHED,
          "acknowledged": pb.PRINT_BATCH_STATE_ACKNOWLEDGED}
STATE_NAMES = {v: k for k, v in STATES.items()}
PARTS = {"pdf": pb.PRINT_BATCH_PART_PDF, "manifest_json": pb.PRINT_BATCH_PART_MANIFEST_JSON,
         "manifest_csv": pb.PRINT_BATCH_PART_MANIFEST_CSV}
PART_NAMES = {v: k for k, v in PARTS.items()}
DEFAULT_CHUNK = 1024 * 1024
MAX_CHUNK = 4 * 1024 * 1024


def batch_to_proto(info: BatchInfo) -> pb.PrintBatch:
    return pb.PrintBatch(
        batch_id=info.batch_id, printshop=info.printshop, profile=info.profile,
        envelope=info.envelope, inserts=list(info.inserts), state=STATES[info.state],
        closed_reason=info.reason, closed_at=info.closed_at.isoformat(), pieces=info.pieces,
        sheets=info.sheets, pages=info.pages, first_sequence=info.first_sequence,
        last_sequence=info.last_sequence,
        files=[pb.PrintBatchFile(part=PARTS[p], size=f["size"], sha256=f["sha256"])
               for p, f in info.files.items()],
        spoiled_piece_ids=list(info.spoiled or ()), reprint_batch_id=info.reprint_batch_id or "",
    )


class PrintShopServicer(printshop_pb2_grpc.PrintShopServicer):
    def __init__(self, batches: BatchService,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.batches = batches
        self.clock = clock

    @staticmethod
    def _scope() -> tuple[str, str | None]:
        caller = current_caller()
        return caller.tenant, caller.printshop

    def ListPrintBatches(self, request: pb.ListPrintBatchesRequest,
                         context: grpc.ServicerContext) -> pb.ListPrintBatchesResponse:
        tenant, printshop = self._scope()
        states = []
        for n, state in enumerate(request.states):
            if state not in STATE_NAMES:
                raise InvalidInput.field(f"states[{n}]", "unknown print batch state")
            states.append(STATE_NAMES[state])
        return pb.ListPrintBatchesResponse(batches=[
            batch_to_proto(b) for b in self.batches.list(tenant, printshop, states)])

    def FetchPrintBatch(self, request: pb.FetchPrintBatchRequest,
                        context: grpc.ServicerContext) -> Iterator[pb.PrintBatchChunk]:
        tenant, printshop = self._scope()
        if not request.batch_id:
            raise InvalidInput.field("batch_id", "is required")
        if request.part and request.part not in PART_NAMES:
            raise InvalidInput.field("part", "unknown part")
        parts = [PART_NAMES[request.part]] if request.part else list(PARTS)
        if request.offset < 0 or (request.offset and len(parts) != 1):
            raise InvalidInput.field("offset", "must be >= 0, and needs one `part` to resume")
        if request.chunk_size < 0 or request.chunk_size > MAX_CHUNK:
            raise InvalidInput.field("chunk_size", f"must be 0..{MAX_CHUNK}")
        size = request.chunk_size or DEFAULT_CHUNK
        info = self.batches.get(tenant, printshop, request.batch_id)
        contents = {part: self.batches.read(info, part) for part in parts}
        if request.offset > len(contents[parts[0]]):
            raise InvalidInput.field("offset", "is beyond the end of the part")
        if printshop is not None:
            self.batches.mark_fetched(info.batch_id)
        return self._chunks(info, contents, request.offset, size)

    @staticmethod
    def _chunks(info: BatchInfo, contents: dict[str, bytes], offset: int,
                size: int) -> Iterator[pb.PrintBatchChunk]:
        for part, content in contents.items():
            meta = info.files[part]
            position = offset
            while True:
                data = content[position: position + size]
                last = position + len(data) >= len(content)
                yield pb.PrintBatchChunk(part=PARTS[part], offset=position, data=data,
                                         total_size=len(content), sha256=meta["sha256"],
                                         last=last)
                position += len(data)
                if last:
                    break
            offset = 0

    def AcknowledgePrintBatch(self, request: pb.AcknowledgePrintBatchRequest,
                              context: grpc.ServicerContext) -> pb.PrintBatch:
        tenant, printshop = self._scope()
        if not request.batch_id:
            raise InvalidInput.field("batch_id", "is required")
        info = self.batches.get(tenant, printshop, request.batch_id)
        return batch_to_proto(
            self.batches.acknowledge(info, list(request.spoiled_piece_ids), self.clock()))

    def ClosePrintBatches(self, request: pb.ClosePrintBatchesRequest,
                          context: grpc.ServicerContext) -> pb.ClosePrintBatchesResponse:
        tenant, _ = self._scope()
        return pb.ClosePrintBatchesResponse(
            batch_ids=self.batches.close_now(self.clock(), tenant))
