"""Text for fields of limited length -> the text cut or wrapped between words, never inside one.

Formats the channels write limit their free-text fields in characters: Finvoice 3.0 (names
of 70, a payee of 35, free texts of 512), the EPC QR code (a payee name of 70). A name or a
text longer than its field must not be cut mid-word ("Pohjois-Karjalan Osuuspankki
Kiinteistöpalve"): where the format lets the field repeat (Finvoice's
`SellerOrganisationName`, `InvoiceFreeText`, three `VatFreeText`), the text is wrapped at
spaces onto the repeats (`wrap_at_spaces`); where it cannot, it ends at the last space before
the limit (`cut_at_space`). Text that fits is returned exactly as given.

Pure, no I/O. Lengths are Python characters (code points), as XML Schema counts
`maxLength` on strings.
"""

from __future__ import annotations

import textwrap


def cut_at_space(text: str | None, size: int, minimum: int = 1) -> str | None:
    """`text` in at most `size` characters: as given when it fits, else its runs of
    whitespace made single spaces and cut at the last space before the limit, with no
    trailing space ("Fjordbank Kortservice Oy" in 20 -> "Fjordbank"). A first word
    longer than the field (or one shorter than `minimum`, the type's minimum length, before
    a word that does not fit) is cut hard at `size`: nothing shorter would be left. None or
    blank -> returned as is (the writers leave the element out)."""
    if text is None or len(text) <= size:
        return text
    flat = " ".join(text.split())
    if len(flat) <= size:
        return flat
    space = flat.rfind(" ", 0, size + 1)  # a space right after the limit ends a whole word
    return flat[:space] if space >= max(minimum, 1) else flat[:size].rstrip()


def wrap_at_spaces(text: str | None, size: int, *, parts: int | None = None,
                   minimum: int = 1, keep_breaks: bool = False,
                   placeholder: str = " …") -> list[str]:
    """`text` as pieces of at most `size` characters for a field that repeats, broken at
    spaces only (never after a hyphen: "mva-" + "pliktig" would read "mva- pliktig" when a
    receiver joins the pieces). `text` that fits is one piece, exactly as given.

    `parts`: how often the field may repeat (None: unbounded); a text longer than they hold
    ends at the last whole word that fits, followed by `placeholder`. `minimum`: the type's
    minimum length; a piece shorter (a lone initial) takes the word before it.
    `keep_breaks`: line breaks stay inside the pieces (a free text's paragraphs), else every
    run of whitespace is one space. None or blank -> []."""
    if text is None or not text.strip():
        return []
    if len(text) <= size:
        return [text]
    if not keep_breaks:
        text = " ".join(text.split())
    pieces = textwrap.wrap(text, size, break_on_hyphens=False, replace_whitespace=False,
                           max_lines=parts, placeholder=placeholder)
    for i in range(1, len(pieces)):  # a piece under the minimum takes the word before it
        if len(pieces[i]) < minimum and " " in pieces[i - 1]:
            head, word = pieces[i - 1].rsplit(" ", 1)
            if len(word) + 1 + len(pieces[i]) <= size:
                pieces[i - 1 : i + 1] = [head, f"{word} {pieces[i]}"]
    return pieces
