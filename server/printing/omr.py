"""Inserter codes: a sheet's place in its mail piece turns into the marks printed on it.

Pure logic, no PDF: `server.printing.marks` draws what these functions decide.

An envelope inserter collects sheets in an accumulator until it reads "end of collation",
then folds them, adds the inserts from the selected feeders and closes the envelope. What
it reads on every sheet is a column of OMR bars (`sheet_code`) or, on newer lines, a
DataMatrix (`datamatrix_payload`). The rules, as Quadient DS and Pitney Bowes DI apply them:

* ``start``   on every sheet: tells the reader a code begins here.
* ``eoc``     end of collation: on the piece's last sheet only. With negative logic
              (`OmrSpec.eoc_negative`, Pitney Bowes) it is the other way round: printed on
              every sheet *except* the last, so a missing bar means "insert now".
* ``feedN``   selective feed: pull an insert from feeder N. Only on the last sheet, because
              that is when the inserter acts on the whole piece.
* ``seqK``    sequence check: the sheet's running number in the batch, modulo 2**seq_bits,
              as binary bits (``seq1`` weight 1, ``seq2`` weight 2, ``seq4`` weight 4 ...).
              It runs across pieces, so a lost, doubled or swapped sheet breaks the count
              and stops the machine.
* ``parity``  set so that the number of bars printed on the sheet -- counting every bar,
              start, safety and the parity bar itself -- is even (``parity = "even"``) or
              odd (``"odd"``). A smudge or a dropped bar then fails the check.
* ``safety``  on every sheet: closes the code; the reader rejects a code without it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from server.printing.profiles import OmrSpec

DATAMATRIX_VERSION = "K1"
_PIECE_ID = re.compile(r"[\x21-\x7b\x7d\x7e]{1,64}")  # printable ASCII without space and "|"


def sheet_code(
    spec: OmrSpec,
    *,
    sheet_in_piece: int,
    sheets_in_piece: int,
    sequence: int,
    feeders: Iterable[int] = frozenset(),
) -> tuple[str, ...]:
    """The names of the marks printed on one sheet, in `spec.marks` order (top first).

    `sheet_in_piece` is 1-based; `sequence` is the sheet's running number in the batch
    (any non-negative int, wrapped to `spec.seq_bits` bits here); `feeders` are the
    1-based feeder numbers whose inserts go into this piece.
    """
    if sheets_in_piece < 1:
        raise ValueError(f"sheets_in_piece: {sheets_in_piece} must be at least 1")
    if not 1 <= sheet_in_piece <= sheets_in_piece:
        raise ValueError(f"sheet_in_piece: {sheet_in_piece} not in 1..{sheets_in_piece}")
    if sequence < 0:
        raise ValueError(f"sequence: {sequence} must not be negative")
    feeders = frozenset(feeders)
    unknown = sorted(f for f in feeders if not 1 <= f <= spec.feeders)
    if unknown:
        raise ValueError(
            f"feeders: feeder {unknown[0]} does not exist (profile has feeders 1..{spec.feeders})"
        )

    last = sheet_in_piece == sheets_in_piece
    seq_value = sequence % (2**spec.seq_bits)
    printed: set[str] = {"start", "safety"}
    if last != spec.eoc_negative:
        printed.add("eoc")
    if last:
        printed.update(f"feed{f}" for f in feeders)
    printed.update(f"seq{2**bit}" for bit in range(spec.seq_bits) if seq_value >> bit & 1)
    if "parity" in spec.marks:
        want_odd = spec.parity == "odd"
        if (len(printed) % 2 == 1) != want_odd:
            printed.add("parity")
    return tuple(m for m in spec.marks if m in printed)


# --- DataMatrix ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataMatrixPayload:
    """What a sheet's DataMatrix says, parsed back (see `datamatrix_payload`)."""

    piece_id: str
    sheet_in_piece: int
    sheets_in_piece: int
    feeders: frozenset[int]
    sequence: int


def datamatrix_payload(
    piece_id: str,
    sheet_in_piece: int,
    sheets_in_piece: int,
    feeders: Iterable[int],
    sequence: int,
) -> str:
    """The text encoded in a sheet's DataMatrix.

    Format: ``K1|<piece id>|<sheet>/<sheets>|<feeders>|<sequence>``, e.g.
    ``K1|01J9Z3QK8P|2/3|14|1207``:

    * ``K1``: format version, so a reader can reject codes it does not understand;
    * the piece id (printable ASCII, no space or ``|``, at most 64 characters);
    * sheet n of m, 1-based (n == m is end of collation);
    * the selective-feed feeders as digits in ascending order (feeders 1-9), ``0`` for none;
      repeated on every sheet, since a camera reader sees each sheet on its own;
    * the sheet's running number in the batch, not wrapped: unique within a batch.

    Short and digit-heavy on purpose: DataMatrix packs two digits per codeword, and a
    smaller symbol reads more reliably at inserter speed.
    """
    if not _PIECE_ID.fullmatch(piece_id):
        raise ValueError(
            f"piece_id: {piece_id!r} must be 1-64 printable ASCII characters without space or '|'"
        )
    if not 1 <= sheet_in_piece <= sheets_in_piece:
        raise ValueError(f"sheet_in_piece: {sheet_in_piece} not in 1..{sheets_in_piece}")
    if sequence < 0:
        raise ValueError(f"sequence: {sequence} must not be negative")
    feeders = sorted(set(feeders))
    if any(not 1 <= f <= 9 for f in feeders):
        raise ValueError(f"feeders: {feeders} must be in 1..9 for the DataMatrix")
    feeder_text = "".join(str(f) for f in feeders) or "0"
    return (
        f"{DATAMATRIX_VERSION}|{piece_id}|{sheet_in_piece}/{sheets_in_piece}|"
        f"{feeder_text}|{sequence}"
    )


def parse_datamatrix_payload(text: str) -> DataMatrixPayload:
    """Parse what `datamatrix_payload` wrote; ValueError for anything else."""
    parts = text.split("|")
    if len(parts) != 5 or parts[0] != DATAMATRIX_VERSION:
        raise ValueError(f"not a {DATAMATRIX_VERSION} sheet code: {text!r}")
    _, piece_id, position, feeder_text, sequence = parts
    sheet, _, sheets = position.partition("/")
    if not (sheet.isdigit() and sheets.isdigit() and feeder_text.isdigit() and sequence.isdigit()):
        raise ValueError(f"malformed sheet code: {text!r}")
    return DataMatrixPayload(
        piece_id=piece_id,
        sheet_in_piece=int(sheet),
        sheets_in_piece=int(sheets),
        feeders=frozenset(int(c) for c in feeder_text if c != "0"),
        sequence=int(sequence),
    )
