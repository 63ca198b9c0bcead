"""A MIME message -> its bytes, as the standard library's `BytesGenerator` writes them, with
each body written in one piece; and a text part's quoted-printable body, as its content
manager encodes it, with the escaping done at C speed.

`Message.as_bytes` flattens through `email.generator.BytesGenerator`, which writes a text
part's body line by line: a `write` (an ASCII encode and a file write) for every line and
another for every line end, some 500 calls for an e-mail's quoted-printable text and HTML
parts (issue 14: the MIME generator was the e-mail's largest Python cost after its headers).
`_BodiesAtOnce` writes the same lines joined with the same line end in one `write`: the
generator's loop writes each line followed by the line end and the last line only when it
is not empty, which is exactly `linesep.join(lines)` of `NLCRE.split(body)` (the split ends
with an empty string if and only if the body ends with a line break), and encoding the
joined text is encoding its pieces one after the other (ASCII with surrogateescape maps
each character on its own). Everything else is the standard generator's.

The content manager (`email.contentmanager.raw_data_manager`) encodes a quoted-printable
text body with `quoprimime.body_encode`, whose first step maps every character through a
256-entry list (`str.translate` with a list: a Python-level lookup per character, half the
encoding of an e-mail's 12 KB HTML). `qp_body` does the same mapping as a few
`bytes.replace` calls, one per unsafe byte value the body holds ("=" first, as every other
escape writes one), then cuts the lines exactly as `body_encode` does (its loop, copied).
`TEXT_CONTENT` is the standard library's content manager with that encoding for a str set
as quoted-printable; every other set and get is the standard library's own.

tests/unit/test_email_writer.py holds `qp_body` equal to `body_encode` (Hypothesis), a part
set through `TEXT_CONTENT` equal to the standard library's, `as_bytes` equal to
`Message.as_bytes` on bodies with every kind of line end, and whole messages equal to those
of the standard library's content manager; tests/unit/test_email_mime_bytes.py and
test_email_header_folds.py compare whole messages with its generator.
"""

from __future__ import annotations

import email.charset
import io
from email import contentmanager, quoprimime
from email.contentmanager import ContentManager, raw_data_manager
from email.generator import NLCRE, BytesGenerator
from email.message import Message
from email.policy import Policy


class _BodiesAtOnce(BytesGenerator):
    """`BytesGenerator` writing a body's lines in one `write` (see the module docstring);
    its clones for the parts of a multipart are of this class too (`Generator.clone`)."""

    def _write_lines(self, lines: str) -> None:
        """`lines` with every line end made the policy's, in one write (the standard
        generator writes each line and each line end apart)."""
        if lines:
            self.write(self._NL.join(NLCRE.split(lines)))


def as_bytes(message: Message, policy: Policy) -> bytes:
    """`message.as_bytes(policy=policy)`, byte for byte (no unix From line)."""
    out = io.BytesIO()
    _BodiesAtOnce(out, mangle_from_=False, policy=policy).flatten(message, unixfrom=False)
    return out.getvalue()


_BODY_MAP = quoprimime._QUOPRI_BODY_ENCODE_MAP  # what body_encode maps each byte to
_SAFE = bytes(c for c in range(256) if _BODY_MAP[c] == chr(c))  # kept as they are
_ESCAPES = {c: _BODY_MAP[c].encode("ascii") for c in range(256) if _BODY_MAP[c] != chr(c)}
assert all(escape.startswith(b"=") for escape in _ESCAPES.values())


def qp_body(data: bytes, maxlinelen: int = 76) -> str:
    """`quoprimime.body_encode(data.decode("latin-1"), maxlinelen)`, character for
    character (see the module docstring); `ValueError` for a `maxlinelen` under 4 as it."""
    if maxlinelen < 4:
        raise ValueError("maxlinelen must be at least 4")
    if not data:
        return ""
    unsafe = set(data.translate(None, _SAFE))
    if 61 in unsafe:  # "=" first: every other escape starts with one
        data = data.replace(b"=", _ESCAPES[61])
        unsafe.discard(61)
    for byte in unsafe:
        data = data.replace(bytes((byte,)), _ESCAPES[byte])
    body = data.decode("ascii")
    # quoprimime.body_encode from here on (its eol: "\n")
    soft_break = "=\n"
    maxlinelen1 = maxlinelen - 1
    encoded_body: list[str] = []
    append = encoded_body.append
    for line in body.splitlines():
        start = 0
        laststart = len(line) - 1 - maxlinelen
        while start <= laststart:
            stop = start + maxlinelen1
            if line[stop - 2] == "=":  # never break an escape
                append(line[start:stop - 1])
                start = stop - 2
            elif line[stop - 1] == "=":
                append(line[start:stop])
                start = stop - 1
            else:
                append(line[start:stop] + "=")
                start = stop
        if line and line[-1] in " \t":  # whitespace at the end of a line is escaped
            room = start - laststart
            if room >= 3:
                q = quoprimime.quote(line[-1])
            elif room == 2:
                q = line[-1] + soft_break
            else:
                q = soft_break + quoprimime.quote(line[-1])
            append(line[start:-1] + q)
        else:
            append(line[start:])
    if body[-1] in "\r\n":
        append("")
    return "\n".join(encoded_body)


def _set_text_content(msg: Message, string: str, subtype: str = "plain",
                      charset: str = "utf-8", cte: str | None = None, disposition=None,
                      filename=None, cid=None, params=None, headers=None) -> None:
    """`contentmanager.set_text_content`, encoding a quoted-printable body by `qp_body`."""
    if cte != "quoted-printable":
        contentmanager.set_text_content(msg, string, subtype, charset, cte, disposition,
                                        filename, cid, params, headers)
        return
    contentmanager._prepare_set(msg, "text", subtype, headers)
    lines = string.encode(charset).splitlines()
    msg.set_payload(qp_body(b"\n".join(lines) + b"\n", msg.policy.max_line_length))
    msg.set_param("charset", email.charset.ALIASES.get(charset, charset), replace=True)
    msg["Content-Transfer-Encoding"] = cte
    contentmanager._finalize_set(msg, disposition, filename, cid, params)


TEXT_CONTENT = ContentManager()
TEXT_CONTENT.get_handlers.update(raw_data_manager.get_handlers)
TEXT_CONTENT.set_handlers.update(raw_data_manager.set_handlers)
TEXT_CONTENT.add_set_handler(str, _set_text_content)
