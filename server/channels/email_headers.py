"""What may go into an e-mail's headers: header text from data, checked before the message
is built, and the written header section read back after.

Python before 3.11.10 / 3.12.5 (CVE-2024-6923) decodes an RFC 2047 encoded word inside a
display name or a subject and writes the CR LF it may hold raw, so a customer name could add
headers (Reply-To, Bcc) to the bank's e-mail; and a line break in data the subject carries
would be quietly joined, unlike the same value in the PDF and the SMS. Data holding either is
refused with `InvalidInput` naming its JSON path (`Composition.source_text`), and
`headers_read_back` checks the written headers whatever the Python.

The message's policy (`SMTP_POLICY`) is the standard library's SMTP policy whose header
registry keeps the header objects it made and their folds (the lines written), since most
repeat from message to message, and makes each header class once per process.
"""

from __future__ import annotations

import functools
import re
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import SMTP, EmailPolicy, compat32

from server.compose.builders.base import LINE_BREAK, one_line
from server.compose.model import Composition
from server.errors import InvalidInput

_WHITESPACE = re.compile(r"[^\S\xa0\u202f]+")


# An RFC 2047 encoded word (`=?charset?B|Q?text?=`), as loosely as the standard library's
# header parser finds one.
_ENCODED_WORD = re.compile(r"=\?[^?]*\?[^?]*\?.*?\?=", re.DOTALL)


def check_header_text(value: str, composition: Composition, field: str) -> str:
    """`value` for a header, refused with `InvalidInput` naming the data field it came from
    (`field` when none holds the encoded word) when it holds an RFC 2047 encoded word."""
    found = _ENCODED_WORD.search(value)
    if found is None:
        return value
    path = next((p for p, text in composition.source_text if found.group() in text), field)
    raise InvalidInput.field(path, f"holds an RFC 2047 encoded word ({found.group()[:40]!r}), "
                             "which an e-mail header would decode; send the text itself")


def check_subject_values(subject: str, composition: Composition) -> None:
    """`InvalidInput` naming the data field when a value holding a line break is in the
    subject: the subject would read as one line with the break gone, unlike the PDF and the
    SMS of the same document (a template's own line breaks are layout, and collapse)."""
    for path, value in composition.source_text:
        if LINE_BREAK.search(value) and len(value) > 1 and header_line(value) in subject:
            one_line(value, path)


def header_line(text: str) -> str:
    """Header text: whitespace (a template's newlines included) collapsed to single spaces;
    the no-break spaces of formatted amounts stay."""
    return _WHITESPACE.sub(" ", text).strip()


def headers_read_back(content: bytes, message: EmailMessage) -> bytes:
    """`content` when its header section reads back as the headers `message` was given,
    name for name; else `InvalidInput`: a value wrote a line break that starts a header of
    its own (CVE-2024-6923 on older Pythons; see `_ENCODED_WORD`)."""
    head = content[:content.find(b"\r\n\r\n") + 2]
    written = [name.lower() for name in BytesHeaderParser(policy=compat32).parsebytes(head)]
    given = [name.lower() for name in message]
    if written != given:
        extra = sorted(set(written) - set(given)) or written
        raise InvalidInput.field("$", f"a value would write headers of its own into the "
                                 f"e-mail ({', '.join(extra)}); no e-mail is sent")
    return content


KEPT_HEADERS = 256  # header objects kept: a chunk's repeated ones, whatever varies between


class _KeptHeaders(HeaderRegistry):
    """The standard library's header registry, keeping the last `KEPT_HEADERS` headers it
    made: a message makes some 24 header objects (each value parsed into a token tree,
    a third of the e-mail's CPU), and most repeat from message to message: the sender,
    MIME-Version, each part's Content-Type and Content-Transfer-Encoding, the language.
    A header object is immutable (a `str` with its parse tree, which folding only reads),
    so one made for the same name and value is the one the registry would make again.

    Each kept header also carries its folds (`_FOLDS`, filled by `_KeptFolds`), and the
    header classes are made once per name: the standard library's registry makes a new
    class (`type(...)`) at every lookup, and `Message.__setitem__` looks one up for every
    header it sets (`policy.header_max_count`)."""

    def __init__(self) -> None:
        super().__init__()
        self._made = functools.lru_cache(maxsize=KEPT_HEADERS)(self._make)
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:  # the registry's class for the name, as it would make it again
            cls = self._classes[key] = super().__getitem__(name)
        return cls

    def map_to_type(self, name: str, cls: type) -> None:
        super().map_to_type(name, cls)
        self._classes.clear()

    def _make(self, name: str, value: str) -> BaseHeader:
        header = super().__call__(name, value)
        setattr(header, _FOLDS, {})
        return header

    def __call__(self, name: str, value: object) -> BaseHeader:
        if type(value) is not str:  # a header made elsewhere: the registry's own answer
            return super().__call__(name, value)
        return self._made(name, value)


# The attribute of a kept header that holds its folds: {policy key: the header as written}.
_FOLDS = "_kanal_folds"


class _KeptFolds(EmailPolicy):
    """An `EmailPolicy` that folds a kept header (`_KeptHeaders`) once: its fold, the
    header's lines as `fold_binary` writes them, is kept with the header object, under the
    policy's settings. Folding walks the header's parse tree token by token (a third of
    writing a message), while the sender, MIME-Version, the parts' Content-Type and
    Content-Transfer-Encoding and the language repeat in every message of a layout.

    A fold depends on the header object alone (its name as given, its parse tree, which the
    registry made from the value as given, encoded words and all) and on the policy; the
    key is the policy's class and settings, not the object: the generator writes each
    MIME part with a clone of the policy (`clone(linesep=...)`), equal but new. A header
    made elsewhere (from an `Address`, or any value not a `str`) is folded each time."""

    def fold_binary(self, name: str, value: object) -> bytes:
        folds = getattr(value, _FOLDS, None)
        if folds is None:
            return super().fold_binary(name, value)
        key = (type(self), tuple(sorted(vars(self).items())))
        folded = folds.get(key)
        if folded is None:
            folded = folds[key] = super().fold_binary(name, value)
        return folded


# policy SMTP (CRLF, 78-character lines), and with SMTPUTF8 (`utf8=True`), making headers
# through `_KeptHeaders` and writing them through `_KeptFolds`: the same bytes, byte for
# byte (tests/unit/test_email_mime_bytes.py, tests/unit/test_email_header_folds.py), and
# both made once per process.
SMTP_POLICY = _KeptFolds(linesep=SMTP.linesep, header_factory=_KeptHeaders())
SMTPUTF8_POLICY = SMTP_POLICY.clone(utf8=True)
