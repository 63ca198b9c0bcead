"""Organisation numbers, VAT identifiers and electronic addresses, normalised once (python-stdnum).

A caller writes identifiers the way people write them: `556036-0793`, `923 609 016 MVA`,
`NO 923609016 MVA`, `13 58 56 28`, `2077474-0`. E-invoice rules want one exact form per
scheme (Peppol PEPPOL-COMMON-R040..R050, SE-R-003/004/013, NO-R-001, DK-R-014, EN 16931
BR-CO-09), so each identifier is parsed and checked here, with python-stdnum's modules per
country, and turned into that form before anything is computed or written:

    a customer's national id (personal   NO fødselsnummer (D- and H-numbers too) -> 11
    identity number, by the customer's   digits, SE personnummer or samordningsnummer ->
    country, else the sender's:          12 digits YYYYMMDDNNNN, DK CPR -> 10 digits, FI
    `national_id`)                       henkilötunnus -> DDMMYYCZZZQ, PL PESEL -> 11
                                         digits: the forms Digipost, Kivra and e-Boks take;
                                         a customer in DE, AT, GB, ...: as given
    organisation number (BT-30 / BT-47)   NO 0192 -> 9 digits, SE 0007 -> 10 digits,
                                          DK 0184 -> 8 digits (CVR), FI 0037 -> Y-tunnus
                                          '1234567-8'; other countries: as given (compact)
    VAT identifier (BT-31 / BT-48 / BT-63) country prefix + national form: NO...MVA,
                                          SE + 12 digits, DK + 8, FI + 8, EL for Greece
    electronic address (BT-34 / BT-49)    EAS code from the code list; the value in the
                                          form its scheme's Peppol rule demands, its check
                                          digit valid where python-stdnum checks the
                                          scheme (`peppol_id`); a party
                                          that names none can be addressed by its
                                          organisation number (Nordic ICDs, which are EAS
                                          codes too) or its VAT id (`VAT_EAS`: DE 9930,
                                          AT 9914, GB 9932, PL 9945), `derived_endpoint`

Errors are `IdentifierError` with the rule they would break; builders turn them into
`InvalidInput` at the JSON path of the field.
"""

from __future__ import annotations

import re

from stdnum import get_cc_module, lei, luhn
from stdnum.ch import uid as ch_uid
from stdnum.de import leitweg as de_leitweg
from stdnum.dk import cpr as dk_cpr
from stdnum.dk import cvr as dk_cvr
from stdnum.ee import registrikood as ee_registrikood
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)
from stdnum.fi import alv as fi_alv
from stdnum.fi import hetu as fi_hetu
from stdnum.fi import ytunnus as fi_ytunnus
from stdnum.fr import siren as fr_siren
from stdnum.fr import siret as fr_siret
from stdnum.is_ import kennitala as is_kennitala
from stdnum.it import codicefiscale as it_codicefiscale
from stdnum.it import iva as it_iva
from stdnum.jp import cn as jp_cn
from stdnum.no import fodselsnummer as no_fodselsnummer
from stdnum.no import orgnr as no_orgnr
from stdnum.pl import pesel as pl_pesel
from stdnum.se import orgnr as se_orgnr
from stdnum.se import personnummer as se_personnummer
from stdnum.sg import uen as sg_uen
from stdnum.us import ein as us_ein

from server.compose import codelists
from server.errors import quote


class IdentifierError(ValueError):
    """An identifier that cannot be made valid; `rule` names the rule it breaks."""

    def __init__(self, rule: str, message: str):
        super().__init__(f"[{rule}] {message}")
        self.rule = rule
        self.reason = message


# ISO 6523 ICD of each Nordic country's organisation number (legal registration, BT-30/47)
ORG_NUMBER_SCHEME = {"NO": "0192", "SE": "0007", "DK": "0184", "FI": "0037"}

_SEPARATORS = re.compile(r"[\s\-./:,]")


def compact(value: str) -> str:
    """Remove spaces and the separators people put in numbers; upper-case letters."""
    return _SEPARATORS.sub("", value).upper()


def organisation_number(value: str, country: str | None, scheme: str | None = None
                        ) -> tuple[str, str | None]:
    """An organisation number as written -> (normalised value, ICD scheme).

    The scheme is `scheme` when given (an ICD code), else the country's national register
    (`ORG_NUMBER_SCHEME`), else None (a foreign number without a known scheme).
    """
    scheme = scheme or ORG_NUMBER_SCHEME.get(country or "")
    if scheme is not None and scheme not in codelists.ICD:
        raise IdentifierError("BR-CL-11", f"{quote(scheme)} is not an ISO 6523 ICD scheme")
    if scheme == "0037":  # Finnish business id (Y-tunnus), written 1234567-8
        try:
            return fi_ytunnus.format(fi_ytunnus.validate(value.strip())), scheme
        except ValidationError as exc:
            raise IdentifierError("BR-CL-11", f"{quote(value)} is not a valid Finnish business id "
                                  f"(Y-tunnus, 1234567-8): {exc}") from exc
    return normalise_id(scheme, value), scheme


def normalise_id(scheme: str | None, value: str) -> str:
    """An identifier of an ICD/EAS scheme in the form the scheme's Peppol rule demands
    (PEPPOL-COMMON-R040..R050); identifiers of other schemes are returned as given."""
    text = value.strip()
    try:
        if scheme == "0192":  # PEPPOL-COMMON-R041: 9 digits, MOD11
            number = compact(text).removeprefix("NO").removesuffix("MVA")
            return no_orgnr.validate(number)
        if scheme == "0007":  # PEPPOL-COMMON-R049, SE-R-003/004/013: 10 digits, Luhn
            return se_orgnr.validate(compact(text).removeprefix("SE"))
        if scheme == "0184":  # PEPPOL-COMMON-R042: 8 digits or DK + 8 digits (format only,
            number = compact(text)  # as the rule: no check digit is asked of a CVR number)
            digits = dk_cvr.compact(number)
            if not re.fullmatch(r"[0-9]{8}", digits):
                raise IdentifierError("PEPPOL-COMMON-R042", f"{quote(value)} is not a Danish CVR "
                                      "number (8 digits, optionally prefixed DK)")
            return f"DK{digits}" if number.startswith("DK") else digits
    except ValidationError as exc:
        raise IdentifierError(_RULE_BY_SCHEME[scheme], f"{quote(value)} is not a valid "
                              f"{_NAME_BY_SCHEME[scheme]}: {exc}") from exc
    if scheme == "0088":  # PEPPOL-COMMON-R040: GS1 check digit
        number = compact(text)
        if not (number.isdigit() and gln_check_ok(number)):
            raise IdentifierError("PEPPOL-COMMON-R040", f"{quote(value)} is not a valid GLN")
        return number
    if scheme == "0208":  # PEPPOL-COMMON-R043: Belgian enterprise number, 10 digits MOD97
        number = compact(text).removeprefix("BE")
        if not (re.fullmatch(r"[0-9]{10}", number)
                and 97 - int(number[:8]) % 97 == int(number[8:])):
            raise IdentifierError("PEPPOL-COMMON-R043",
                                  f"{quote(value)} is not a valid Belgian enterprise number")
        return number
    if scheme == "0151":  # PEPPOL-COMMON-R050: Australian Business Number
        number = compact(text)
        if not (re.fullmatch(r"[0-9]{11}", number) and _abn_ok(number)):
            raise IdentifierError("PEPPOL-COMMON-R050", f"{quote(value)} is not a valid ABN")
        return number
    return text


_RULE_BY_SCHEME = {"0192": "PEPPOL-COMMON-R041", "0007": "PEPPOL-COMMON-R049",
                   "0184": "PEPPOL-COMMON-R042"}
_NAME_BY_SCHEME = {"0192": "Norwegian organisation number (9 digits, MOD11)",
                   "0007": "Swedish organisation number (10 digits, Luhn)",
                   "0184": "Danish CVR number (8 digits)"}


# The personal identity number of each country with one python-stdnum checks: (the name a
# reader knows it by, the module, how it is written). Digital mailboxes find their
# recipients by it (Digipost NO, Kivra SE, e-Boks DK: server/delivery/routing.py).
# Germany, Austria and the UK have no national personal number a bank may address mail by
# (the German Steuer-IdNr. is for tax only, AO § 139b): their ids are taken as given.
NATIONAL_ID_SCHEMES = {
    "NO": ("Norwegian fødselsnummer", no_fodselsnummer, "11 digits DDMMYYNNNCC"),
    "SE": ("Swedish personnummer", se_personnummer, "YYYYMMDD-NNNN or YYMMDD-NNNN"),
    "DK": ("Danish CPR number", dk_cpr, "10 digits DDMMYY-NNNN"),
    "FI": ("Finnish henkilötunnus", fi_hetu, "DDMMYYCZZZQ, e.g. 131052-308T"),
    "PL": ("Polish PESEL", pl_pesel, "11 digits"),
}


def national_id(value: str, country: str | None, sender_country: str | None = None) -> str:
    """A customer's national id as written -> the compact form of its scheme
    (`national_id_of_scheme` without the scheme's country)."""
    return national_id_of_scheme(value, country, sender_country)[0]


def national_id_of_scheme(value: str, country: str | None,
                          sender_country: str | None = None) -> tuple[str, str | None]:
    """A customer's national id as written -> (the compact form of its scheme, the country
    of the scheme that took it: "NO", "SE", ... of `NATIONAL_ID_SCHEMES`, or None when it
    is taken as given). The scheme's country, not the address's, is the one whose mailbox
    service knows the person by this number (server/delivery/routing.py).

    The scheme is the one of the customer's `country` (the address's), or else of the
    sender's: a bank knows its customers by its own country's number, which they keep when
    they move abroad (a Norwegian bank's customer living in Sweden has a fødselsnummer,
    maybe no personnummer). An id valid in neither is refused, unless the customer's country
    has no scheme (DE, AT, GB, ...: taken as given, stripped): an id of such a country cannot
    be checked, and no mailbox takes it.

    Raises `IdentifierError` (its rule: the first scheme's name, 'Norwegian fødselsnummer';
    `reason`: why without it) saying, per scheme tried, why: a check digit is wrong, the
    length or format is wrong, or the date in it cannot be a birth date (NO and DK:
    python-stdnum also refuses one after the machine's date, the number of someone not born
    yet).
    """
    home, sender = (country or "").upper(), (sender_country or "").upper()
    if home and home not in NATIONAL_ID_SCHEMES:
        return value.strip(), None
    tried: list[str] = []
    rule = ""
    for code, who in ((home, "the customer's country"), (sender, "the sender's country")):
        if code not in NATIONAL_ID_SCHEMES or (tried and code == home):
            continue
        name, module, written = NATIONAL_ID_SCHEMES[code]
        try:
            if module is se_personnummer:
                return _personnummer(value), code
            return module.compact(module.validate(value)), code
        except ValidationError as exc:
            tried.append(f"a {name} ({who} {code}: {_why(exc)}; {written})")
            rule = rule or name
    if not tried:  # neither country has a scheme
        return value.strip(), None
    raise IdentifierError(rule, f"{quote(value)} is {'not' if len(tried) == 1 else 'neither'} "
                          + " nor ".join(tried))


def _why(exc: ValidationError) -> str:
    if isinstance(exc, InvalidChecksum):
        return "a check digit is wrong"
    if isinstance(exc, InvalidLength):
        return "wrong length"
    if isinstance(exc, InvalidFormat):
        return "wrong format"
    text = str(exc)  # python-stdnum's own sentence, for the InvalidComponent it words
    if "not been born yet" in text:
        return "the birth date in it is in the future"
    if "FH-number" in text:
        return "an FH-number (health service), which has no birth date"
    return "the date in it is not a possible birth date"


def _personnummer(value: str) -> str:
    """A Swedish personnummer or samordningsnummer (the birth day + 60, Skatteverket SKV 707)
    -> 12 digits YYYYMMDDNNNN, the century from the birth date (a '+' marks someone 100 or
    older). python-stdnum knows personnummer only: a samordningsnummer gets its checks
    (length, format, Luhn digit) with its birth day for the date."""
    number = se_personnummer.compact(value)  # [YY]YYMMDD-NNNN or [YY]YYMMDD+NNNN
    digits = number[:-5] + number[-4:]
    day = number[-7:-5]
    if not (day.isdigit() and 61 <= int(day) <= 91):
        se_personnummer.validate(number)
        born = se_personnummer.get_birth_date(number)
    else:
        if len(number) not in (11, 13):
            raise InvalidLength()
        if number[-5] not in "-+" or not digits.isdigit():
            raise InvalidFormat()
        born = se_personnummer.get_birth_date(f"{number[:-7]}{int(day) - 60:02d}{number[-5:]}")
        luhn.validate(digits[-10:])
    return digits if len(digits) == 12 else f"{born.year // 100}{digits}"


def default_tax_registration(country: str | None, org_scheme: str | None) -> str | None:
    """BT-32 a seller shows without being asked: a Norwegian company in the register of
    business enterprises shows "Foretaksregisteret" (foretaksregisterloven § 10-2, Peppol
    NO-R-002)."""
    return "Foretaksregisteret" if country == "NO" and org_scheme == "0192" else None


def vat_id(value: str, country: str | None, *, check_digits: bool = False) -> str:
    """A VAT identifier as written -> its canonical form with the country prefix (BR-CO-09).

    The prefix is taken from the value when it starts with a country code, else from the
    party's `country`. Norwegian and Swedish numbers are checked with stdnum (NO-R-001: NO +
    valid org number + MVA, SE-R-001/002: SE + the org number + 01), Danish and Finnish ones
    by their organisation number; other countries' are written compact with their prefix.
    `check_digits`: also check other countries' numbers with python-stdnum's VAT module of
    the country (format and check digit: DE USt-IdNr., AT UID, GB VAT, PL NIP, ...), for a
    party's own id, which its biller knows exactly; an `IdentifierError` ("BT-31") says why.
    """
    number = compact(value)
    prefix = number[:2] if number[:2].isalpha() else None
    if prefix is None:
        if not country:
            raise IdentifierError("BR-CO-09", f"{quote(value)} has no country prefix")
        prefix = "EL" if country == "GR" else country
        number = prefix + number
    body = number[2:]
    iso = "GR" if prefix == "EL" else prefix
    if prefix == "NO":
        org = body.removesuffix("MVA")
        if not (re.fullmatch(r"[0-9]{9}", org) and no_orgnr.is_valid(org)):
            raise IdentifierError("NO-R-001", f"{quote(value)}: a Norwegian VAT id is NO + a valid "
                                  "9-digit organisation number + MVA")
        return f"NO{org}MVA"
    if prefix == "DK" and not re.fullmatch(r"[0-9]{8}", body):
        raise IdentifierError("BR-CO-09", f"{quote(value)}: a Danish VAT id is DK + the 8-digit "
                              "CVR number")
    if prefix == "FI" and re.fullmatch(r"[0-9]{8}", body):
        if not fi_ytunnus.is_valid(body):
            raise IdentifierError("BR-CO-09", f"{quote(value)} is not a valid Finnish VAT id")
        return "FI" + body
    if prefix == "SE":
        if re.fullmatch(r"[0-9]{10}", body) and se_orgnr.is_valid(body):
            body += "01"  # SE VAT id = SE + organisation number + 01
        if not (re.fullmatch(r"[0-9]{12}", body) and body.endswith("01")
                and se_orgnr.is_valid(body[:10])):
            raise IdentifierError("SE-R-002", f"{quote(value)}: a Swedish VAT id is SE + the "
                                  "10-digit organisation number + 01")
        return f"SE{body}"
    if iso not in codelists.COUNTRIES and prefix != "EL":
        raise IdentifierError("BR-CO-09", f"{quote(value)} does not start with a country code")
    # Other countries' VAT ids are written compact with their prefix, as given: EN 16931 and
    # Peppol check only the prefix (BR-CO-09), and refusing a buyer's id on a check digit
    # Kanal cannot be sure of would refuse invoices the receiving side accepts.
    if check_digits:
        _check_vat_digits(value, iso, prefix + body)
    return prefix + body


def _check_vat_digits(value: str, iso: str, number: str) -> None:
    module = get_cc_module(iso.lower(), "vat")
    if module is None:  # no stdnum module for the country: the prefix is all that is checked
        return
    try:
        module.validate(number)
    except ValidationError as exc:
        raise IdentifierError("BT-31", f"{quote(value)} is not a valid {iso} VAT identifier "
                              f"({module.__name__.removeprefix('stdnum.')}): {exc}") from exc


# EAS code of a VAT identifier, by its country prefix: the Peppol participant identifier
# schemes DE:VAT 9930, AT:VAT 9914, GB:VAT 9932 and PL:VAT 9945 (Peppol BIS Billing 3.0 EAS
# code list, codelists/eas.tsv). The address is the VAT id with its prefix ("9930:DE...").
# Kanal's markets whose organisation numbers are no EAS scheme (Handelsregister, Firmenbuch,
# Companies House, KRS); the Nordic ones are addressed by their organisation number.
VAT_EAS = {"DE": "9930", "AT": "9914", "GB": "9932", "PL": "9945"}


def derived_endpoint(legal_id: str | None, legal_id_scheme: str | None,
                     vat: str | None) -> tuple[str, str] | None:
    """The electronic address (BT-34: EAS code, value) of a party that names none: its
    organisation number when its ICD scheme is an EAS code too (0192, 0007, 0184, 0037),
    else its normalised VAT id when `VAT_EAS` has its prefix, else None (no address:
    PEPPOL-EN16931-R010/R020 name the party)."""
    if legal_id and legal_id_scheme and legal_id_scheme in codelists.EAS:
        if legal_id_scheme == "0037":  # the address form: Y-tunnus 2847051-4 is 0037:28470514
            return legal_id_scheme, fi_ytunnus.compact(legal_id)
        return legal_id_scheme, normalise_id(legal_id_scheme, legal_id)
    if vat and vat[:2] in VAT_EAS:
        return VAT_EAS[vat[:2]], vat
    return None


def peppol_id(value: str) -> tuple[str, str]:
    """'0192:923609016' -> ('0192', '923609016'), the value normalised for its scheme.

    The identifier is checked as its scheme's Peppol rule demands (`normalise_id`,
    PEPPOL-COMMON-R040..R050) and, where python-stdnum knows the scheme, for its format and
    check digit too (`participant_check`): a participant id that fails either is a mistyped
    address that names no one, so the caller is told rather than the e-invoice dropped.

    Raises `IdentifierError` (PEPPOL-EN16931-CL008) for a scheme that is not on the EAS
    list, the scheme's own rule (or "EAS <scheme>") for a malformed value; its reason
    names the scheme ("scheme 0192: ...").
    """
    scheme, sep, rest = value.strip().partition(":")
    if not sep or not scheme or not rest.strip():
        raise IdentifierError("BR-62", "must be '<scheme>:<identifier>', e.g. '0192:923609016'")
    if scheme not in codelists.EAS:
        raise IdentifierError("PEPPOL-EN16931-CL008", f"{quote(scheme)} is not on the Electronic "
                              f"Address Scheme list ({codelists.EAS.version})")
    try:
        number = normalise_id(scheme, rest)
        participant_check(scheme, number)
    except IdentifierError as exc:
        raise IdentifierError(exc.rule, f"scheme {scheme}: {exc.reason}") from exc
    return scheme, number


# EAS schemes whose identifiers python-stdnum checks (format and check digit) where Peppol
# has no rule, or one of format only (PEPPOL-COMMON-R042: 0184; every CVR number passes the
# MOD11 check, Erhvervsstyrelsen). 0192, 0007, 0088, 0208, 0151 are `normalise_id`'s.
_STDNUM_SCHEMES = {
    "0002": ("French SIREN number", fr_siren), "0009": ("French SIRET number", fr_siret),
    "0037": ("Finnish business id (LY-tunnus / Y-tunnus)", fi_ytunnus),
    "0183": ("Swiss UID (IDE)", ch_uid), "0184": ("Danish CVR number (8 digits, MOD11)", dk_cvr),
    "0188": ("Japanese corporate number", jp_cn),
    "0191": ("Estonian registry code", ee_registrikood), "0195": ("Singapore UEN", sg_uen),
    "0196": ("Icelandic kennitala", is_kennitala), "0199": ("LEI (ISO 17442)", lei),
    "0204": ("German Leitweg-ID", de_leitweg), "0210": ("Italian codice fiscale", it_codicefiscale),
    "0211": ("Italian partita IVA", it_iva), "0213": ("Finnish VAT number (FI + 8 digits)", fi_alv),
    "9959": ("US Employer Identification Number", us_ein),
}
# EAS schemes of VAT numbers ("Belgium VAT number", ...): the country whose python-stdnum
# VAT module checks them (codelists/eas.tsv; Bosnia, Liechtenstein and the Holy See have
# none, their ids are taken as given).
VAT_SCHEME_COUNTRY = {
    "9910": "HU", "9914": "AT", "9920": "ES", "9922": "AD", "9923": "AL", "9925": "BE",
    "9926": "BG", "9927": "CH", "9928": "CY", "9929": "CZ", "9930": "DE", "9931": "EE",
    "9932": "GB", "9933": "GR", "9934": "HR", "9935": "IE", "9937": "LT", "9938": "LU",
    "9939": "LV", "9940": "MC", "9941": "ME", "9942": "MK", "9943": "MT", "9944": "NL",
    "9945": "PL", "9946": "PT", "9947": "RO", "9948": "RS", "9949": "SI", "9950": "SK",
    "9951": "SM", "9952": "TR", "9957": "FR",
}


def participant_check(scheme: str, number: str) -> None:
    """The identifier of a participant id checked by python-stdnum for its EAS `scheme`
    (`_STDNUM_SCHEMES`, `VAT_SCHEME_COUNTRY`; 0216 OVT: '0037' + a valid Y-tunnus + at most
    5 characters, TIEKE); other schemes' are Peppol's rules only. Raises `IdentifierError`
    ("EAS <scheme>") saying which number it is not and why."""
    if scheme == "0216":
        if not (re.fullmatch(r"0037[0-9]{8}[0-9A-Za-z]{0,5}", number)
                and fi_ytunnus.is_valid(number[4:12])):
            raise IdentifierError("EAS 0216", f"{quote(number)} is not a valid Finnish OVT "
                                  "code ('0037' + the Y-tunnus's 8 digits, its check digit "
                                  "valid, + up to 5 characters)")
        return
    if scheme in VAT_SCHEME_COUNTRY:
        country = VAT_SCHEME_COUNTRY[scheme]
        name, module = f"{country} VAT number", get_cc_module(country.lower(), "vat")
    else:
        name, module = _STDNUM_SCHEMES.get(scheme, ("", None))
    if module is None:
        return
    try:
        module.validate(number)
    except ValidationError as exc:
        raise IdentifierError(f"EAS {scheme}", f"{quote(number)} is not a valid {name}: "
                              f"{exc}") from exc


def gln_check_ok(number: str) -> bool:
    """GS1 check digit (weights 3, 1 from the right, excluding the check digit), any length,
    as PEPPOL-COMMON-R040's u:gln computes it."""
    body = [int(d) for d in number[:-1]][::-1]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(body))
    return (10 - total % 10) % 10 == int(number[-1])


def _abn_ok(number: str) -> bool:
    weights = (10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19)
    digits = [int(d) for d in number]
    digits[0] -= 1
    return sum(w * d for w, d in zip(weights, digits, strict=True)) % 89 == 0
