"""The e-mail's kept header folds (`email_headers._KeptFolds`) write what the standard
library writes: a kept fold equals a fresh fold of the same header by the plain SMTP and
SMTPUTF8 policies for names in many scripts, long values that fold over several lines, RFC
2047 encoded words and MIME parameters; a fold is kept per value as given and per policy
settings, never served for another value that reads the same, another header name or another
line length; and a whole message written through the kept folds is the message the plain
policies write, document after document.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from email import policy as stdlib_policy
from email.headerregistry import BaseHeader

import pytest

from server.channels import email as email_channel
from server.channels.email_headers import SMTP_POLICY, SMTPUTF8_POLICY
from server.compose.composer import ComposeRequest, compose
from server.compose.model import Channel
from tests.layouts import shipped
from tests.pdf_inspect import BLANK_PDF

LONG = ("Kredittkortfaktura for perioden 01.02.2026 til 28.02.2026: å betale 12 345,67 kr, "
        "forfallsdato 25.03.2026, minstebeløp 1 234,00 kr, kontonummer 1503 12 34567")
VALUES = [
    ("From", "Fjordbank <faktura@fjordbank.no>"),
    ("From", "Fjordbank Kort og Betaling Avdeling Nord <faktura@fjordbank.no>"),
    ("Reply-To", "kort@fjordbank.no"),
    ("To", "Åse Bakken <kari.nordmann@example.no>"),
    ("To", "Zoë Ægir-Ørsted Çelik <zoe@xn--b-5ga.no>"),
    ("To", "Ζωή Παπαδοπούλου <zoe@example.gr>"),
    ("To", "Иван Петров <ivan@example.ru>"),
    ("To", "李小龍 <lee@example.cn>"),
    ("To", "محمد علي <m@example.eg>"),
    ("To", "\"Nordmann, Kari\" <kari@example.no>"),
    ("To", "=?utf-8?q?a=2C_b?= <x@example.no>"),
    ("To", "\"a, b\" <x@example.no>"),
    ("To", "kåre@bø.no"),
    ("Subject", "Faktura 1234"),
    ("Subject", LONG),
    ("Subject", LONG.replace("å", "a").replace("ø", "o")),
    ("Subject", "Räkning: att betala 1\xa0234,00\xa0kr, förfallodag 2026-03-25 " * 3),
    ("Subject", "=?utf-8?q?K=C3=A5ri?="),
    ("Subject", "Kåri"),
    ("Subject", "=?iso-8859-1?q?K=E5ri_Nordmann?="),
    ("Subject", "=?utf-8?q?=3D=3Futf-8=3Fq=3Fx=3F=3D?="),
    ("Subject", "=?utf-8?q?x?="),
    ("subject", "Faktura 1234"),
    ("Date", "Mon, 02 Mar 2026 07:30:00 +0000"),
    ("Message-ID", "<01JN4Q7W2E@fjordbank.no>"),
    ("MIME-Version", "1.0"),
    ("Content-Language", "nb-NO"),
    ("Content-Type", 'text/plain; charset="utf-8"'),
    ("Content-Type", 'multipart/alternative; boundary="=_kanal_5c9710a7f6c7ab7952561066_1"'),
    ("Content-Transfer-Encoding", "quoted-printable"),
    ("Content-Disposition", 'attachment; filename="card-invoice-01JN4Q7W2E000002.pdf"'),
    ("Content-Disposition", "attachment; filename*=utf-8''faktura-%C3%A5se-" + "x" * 80
     + ".pdf"),
    ("List-Unsubscribe", "<https://fjordbank.no/avmeld?d=01JN4Q7W2E&token=" + "a" * 70
     + ">, <mailto:avmeld@fjordbank.no?subject=unsubscribe%2001JN4Q7W2E>"),
    ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
]


def _plain(policy):
    """The standard library's own policy with the settings of `policy`: its class
    default header registry, which keeps nothing."""
    return stdlib_policy.SMTPUTF8 if policy.utf8 else stdlib_policy.SMTP


def _reference(policy, name: str, value: str) -> bytes:
    plain = _plain(policy)
    return plain.fold_binary(name, plain.header_factory(name, value))


@pytest.mark.parametrize("policy", [SMTP_POLICY, SMTPUTF8_POLICY], ids=["smtp", "smtputf8"])
@pytest.mark.parametrize(("name", "value"), VALUES)
def test_a_kept_fold_is_the_standard_librarys_fold(policy, name: str, value: str) -> None:
    header = policy.header_factory(name, value)
    first = policy.fold_binary(name, header)
    again = policy.fold_binary(name, policy.header_factory(name, value))  # the kept one
    per_part = policy.clone(linesep=policy.linesep).fold_binary(name, header)  # as MIME parts
    assert first == again == per_part == _reference(policy, name, value)


def test_folds_are_kept_per_value_as_given_not_per_text() -> None:
    """Values that read the same (`str`) but were given differently fold differently: each
    keeps its own, whichever came first."""
    for one, other in [("=?utf-8?q?a=2C_b?= <x@example.no>", "\"a, b\" <x@example.no>"),
                       ("=?utf-8?q?=3D=3Futf-8=3Fq=3Fx=3F=3D?=", "=?utf-8?q?x?=")]:
        name = "To" if "@" in one else "Subject"
        a, b = SMTP_POLICY.header_factory(name, one), SMTP_POLICY.header_factory(name, other)
        assert str(a) == str(b) or name == "Subject"
        folded = (SMTP_POLICY.fold_binary(name, a), SMTP_POLICY.fold_binary(name, b))
        assert folded == (_reference(SMTP_POLICY, name, one),
                          _reference(SMTP_POLICY, name, other))
        assert folded[0] != folded[1]


def test_folds_are_kept_per_name_and_per_policy_settings() -> None:
    lower = SMTP_POLICY.fold_binary("subject", SMTP_POLICY.header_factory("subject", "Kåri"))
    upper = SMTP_POLICY.fold_binary("Subject", SMTP_POLICY.header_factory("Subject", "Kåri"))
    assert (lower, upper) == (b"subject: =?utf-8?q?K=C3=A5ri?=\r\n",
                              b"Subject: =?utf-8?q?K=C3=A5ri?=\r\n")
    # one header object, written by three policies: each gets its own fold
    header = SMTP_POLICY.header_factory("Subject", LONG)
    narrow = SMTP_POLICY.clone(max_line_length=40)
    for policy in (SMTP_POLICY, SMTPUTF8_POLICY, narrow, SMTP_POLICY, SMTPUTF8_POLICY):
        plain = _plain(policy).clone(max_line_length=policy.max_line_length)
        assert policy.fold_binary("Subject", header) == plain.fold_binary(
            "Subject", plain.header_factory("Subject", LONG))
    assert b"\xc3\xa5" in SMTPUTF8_POLICY.fold_binary("Subject", header)
    assert b"\xc3\xa5" not in SMTP_POLICY.fold_binary("Subject", header)


def test_a_kept_header_is_folded_once_per_policy_settings(monkeypatch) -> None:
    """The generator writes each MIME part with a clone of the policy: equal settings, so
    the header's parse tree is walked once, not once per message."""
    folds = []
    fold = BaseHeader.fold
    monkeypatch.setattr(BaseHeader, "fold",
                        lambda self, *, policy: folds.append(self) or fold(self, policy=policy))
    value = f'multipart/mixed; boundary="=_kanal_{uuid.uuid4().hex}_0"'  # never kept before
    for _ in range(3):
        header = SMTP_POLICY.header_factory("Content-Type", value)
        SMTP_POLICY.fold_binary("Content-Type", header)
        SMTP_POLICY.clone(linesep="\r\n").fold_binary("Content-Type", header)
    assert len(folds) == 1


def test_header_classes_are_made_once_per_name() -> None:
    registry = SMTP_POLICY.header_factory
    assert registry["Subject"] is registry["subject"] is registry["SUBJECT"]
    assert registry["Subject"] is not registry["From"]
    assert type(registry("Subject", "a fresh value for the class test")) is registry["Subject"]
    assert SMTPUTF8_POLICY.header_factory is registry


# --- whole messages -------------------------------------------------------------------------

LAYOUTS = shipped()
NOW = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
# names the print fonts can show (the attached PDF's glyph check); other scripts are above
NAMES = ["Åse Bakken", "Ζωή Παπαδοπούλου", "Иван Петров", "Nordmann, Kari \"Kåri\"",
         "Zoë Ægir-Ørsted Çelik",
         "Kari Marie Louise Nordmann-Østby Bakken-Ødegård Kristoffersen"]  # folds


def _messages():
    """(id, composition, layout) for every layout version with e-mail and the recipient
    names above, one after another: the kept headers and folds fill as in a chunk."""
    for layout in LAYOUTS.every_version():
        if "email" not in layout.manifest:
            continue
        sample = json.loads(layout.sample_data())
        for n, name in enumerate(NAMES):
            data = json.loads(json.dumps(sample))
            data["customer"]["name"] = name
            if n % 2:
                data["customer"]["email"] = "kåre@bø.no"  # SMTPUTF8
            document_id = f"01JN4Q7W2E{n:04d}"
            yield f"{layout.ref}-{n}", compose(ComposeRequest(
                tenant="nordkort", layout=layout, data=json.dumps(data),
                document_id=document_id, now=NOW, channels=(Channel.EMAIL,))), layout


def test_messages_written_through_kept_folds_are_the_plain_policies_messages(
        monkeypatch) -> None:
    written = []
    for key, composition, layout in _messages():
        parts = email_channel.message_parts(composition, layout)
        attachment = BLANK_PDF if parts.settings.attach_pdf else None
        written.append((key, parts, attachment,
                        email_channel.message_bytes(parts, attachment)))
    assert len(written) >= 6 * len(NAMES)
    assert any(parts.address.smtputf8 for _, parts, _, _ in written)
    # the same messages with the standard library's plain policies (nothing kept)
    monkeypatch.setattr(email_channel.MessageParts, "policy",
                        property(lambda self: _plain(SMTPUTF8_POLICY if self.address.smtputf8
                                                     else SMTP_POLICY)))
    for key, parts, attachment, content in written:
        assert parts.policy in (stdlib_policy.SMTP, stdlib_policy.SMTPUTF8)
        plain = email_channel.build_message(parts, attachment).as_bytes(policy=parts.policy)
        assert content == plain, key
