"""Payment reminder / collection notice data -> `Content`: total to pay, dates checked, legal text.

A creditor's ledger sends the unpaid invoice (number, dates, amount still outstanding), the
reminder fee, the late-payment interest (a rate and a number of days, or an amount it
computed itself), the new due date and the stage:

    reminder           betalingspåminnelse / purring (NO), betalningspåminnelse (SE)
    collection_notice  inkassovarsel (NO, inkassoloven § 9), inkassokrav (SE)

Computed here, once:

    interest      = outstanding x rate / 100 x days / 365, rounded to cents (half up)
                    (or the amount the data gives)
    total to pay  = outstanding + reminder fee + interest

and checked: the notice is dated after the original due date (`check_overdue`: the debtor
is in default only then), the new due date comes after the original due date and after
the notice date (on the notice's own day it gives no time to pay), and the interest's days
are no more than the invoice is overdue (`check_interest_days`); the law of the debtor's
country, as layout data (`[reminder.law.<CC>]` in the manifest, with its source): the
statutory maximum reminder fee
(NO 35 NOK, SE 60 SEK, DK 100 DKK, FI 5 EUR; DE, AT, PL and GB fix no amount), the days after
the due date before a reminder may carry a fee (NO, FI 14: `check_fee_date`), the law that
puts the debtor in default (`overdue`) and the least time a collection notice must give (NO
14 days, inkassoloven § 9; DK 10; FI 14). Amounts have at most the currency's decimals
(`base.amount` with the currency). The legally required wording is
data-driven: `notice.legal_text` when the creditor's lawyers supply it, else the layout's
per-locale default for the stage. The template only places it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from server.compose.builders.base import (
    CENT,
    BuildRequest,
    Content,
    Formatter,
    amount,
    annual_rate,
    check_payment_term,
    iso_date,
    labels,
    payment_account,
    payment_labels,
    payment_reference,
    payment_scheme,
    postal_address,
    recipient,
    return_line,
    sender_lines,
    window_lines,
)
from server.compose.builders.invoice import context_labels, register_label
from server.compose.formatting import check_currency
from server.compose.layouts import Layout
from server.compose.money import round_money
from server.compose.payments.slips import SlipPaths, fill_names, payee_account, payment_slip
from server.errors import InvalidInput

DAYS_PER_YEAR = Decimal(365)


def late_interest(outstanding: Decimal, rate_percent: Decimal, days: int) -> Decimal:
    """Simple late-payment interest for `days` days at an annual rate (actual/365)."""
    return (outstanding * rate_percent / 100 * days / DAYS_PER_YEAR).quantize(
        CENT, rounding=ROUND_HALF_UP
    )


def reminder_law(layout: Layout, country: str | None) -> Mapping[str, Any]:
    """The layout's `[reminder.law.<country>]` table (fee cap, notice days, source), or {}.
    Layouts without the section (the frozen 1.0.0) keep their one rule: a Norwegian
    creditor's collection notice gives 14 days (`LEGACY_LAW`, by the creditor's country)."""
    return layout.section("reminder").get("law", {}).get((country or "").upper(), {})


LEGACY_LAW = {"collection_notice_days": 14, "source": "inkassoloven § 9"}


def governing_law(layout: Layout, currency: str, debtor_country: str | None,
                  creditor_country: str | None) -> tuple[str | None, Mapping[str, Any]]:
    """(country, law table) for this reminder: the debtor's country's law when the claim is
    in that country's cap currency (or the country fixes no amount), else the creditor's
    (a NOK claim of a Norwegian creditor on a debtor in Sweden follows the Norwegian cap)."""
    if "law" not in layout.section("reminder"):
        return creditor_country, LEGACY_LAW if creditor_country == "NO" else {}
    for country in (debtor_country, creditor_country):
        law = reminder_law(layout, country)
        if law and law.get("currency", currency) == currency:
            return country, law
    return debtor_country, {}


def check_fee(fee: Decimal, currency: str, law: Mapping[str, Any], country: str | None) -> None:
    """Refuse a reminder fee above the statutory cap of the governing law
    (`governing_law`): INVALID_ARGUMENT at $.reminder.fee, naming the cap and the act."""
    if "fee_cap" not in law or not fee:
        return
    cap = Decimal(law["fee_cap"])
    if fee > cap:
        raise InvalidInput.field(
            "$.reminder.fee", f"{fee} {currency} is above the statutory maximum reminder fee "
            f"of {cap} {law['currency']} in {country} ({law['source']})")


def check_invoice_dates(issue_date: date, due_date: date, notice_date: date) -> None:
    """Refuse an invoice whose due date is before its issue date (KANAL-DUE-DATE, as
    `validation.en16931.due_before_issue` for invoices), INVALID_ARGUMENT at the date the
    caller more likely mistyped, the reason naming both. A reminder's invoice has fallen due
    before the reminder is sent, so a due date in the past says nothing here: the issue date
    is blamed when it lies after the reminder's own date `notice_date` too (an invoice is
    issued before it is reminded of: 2026-12-02 typed for 2026-01-02), else the due date."""
    if due_date >= issue_date:
        return
    if issue_date > notice_date:
        raise InvalidInput.field(
            "$.invoice.issue_date",
            f"{issue_date.isoformat()} is after the due date {due_date.isoformat()} "
            f"($.invoice.due_date), and after the reminder's date {notice_date.isoformat()}: "
            "an invoice is issued on or before its due date, and before it is reminded of")
    raise InvalidInput.field(
        "$.invoice.due_date",
        f"{due_date.isoformat()} is before the issue date {issue_date.isoformat()} "
        "($.invoice.issue_date): a due date is on or after the day the invoice is issued")


def check_overdue(notice_date: date, due_date: date, law: Mapping[str, Any],
                  country: str | None, *, dated: bool) -> None:
    """Refuse a reminder or collection notice dated on or before the invoice's due date:
    INVALID_ARGUMENT at $.reminder.date (at the composition date when the data gives none),
    naming the due date, the first day it could be sent and the governing law.

    Until the due date has passed the debtor is not in default, so there is nothing to remind
    of, and no fee or late interest to claim: the earliest day is the day after the due date,
    in every country Kanal serves (`[reminder.law.<CC>] overdue`, the source per country):
    NO inkassoloven § 9 første ledd bokstav a (the notice is sent "etter kravets forfall")
    and forsinkelsesrenteloven § 2; SE lag (1981:739) 1 § ("en förfallen skuld") and
    räntelagen 6 §; DK renteloven § 3 stk. 1 and § 9 b; FI korkolaki 4 § and laki saatavien
    perinnästä; DE BGB § 286 Abs. 1 (a Mahnung "nach dem Eintritt der Fälligkeit"); AT ABGB
    §§ 1333, 1334; PL Kodeks cywilny art. 476, 481; GB Consumer Credit Act 1974 ss. 86B-86C
    (notices of sums in arrears)."""
    if notice_date > due_date:
        return
    earliest = due_date + timedelta(days=1)
    which = "" if dated else " (no date given: the composition date)"
    law_text = (f"; the law of {country}: {law['overdue']}" if law.get("overdue") else "")
    raise InvalidInput.field(
        "$.reminder.date",
        f"{notice_date.isoformat()}{which} is not after the invoice's due date "
        f"{due_date.isoformat()}: the debtor is in default only once the due date has passed, "
        f"so a reminder is sent on {earliest.isoformat()} at the earliest{law_text}")


def check_fee_date(fee: Decimal, notice_date: date, due_date: date, law: Mapping[str, Any],
                   country: str | None) -> None:
    """Refuse a reminder fee on a reminder sent sooner after the due date than the governing
    law allows a fee (`[reminder.law.<CC>] fee_after_due_days`): NO Inkassoforskriften
    § 1-2 første ledd (a purring with a fee at the earliest 14 days after the due date),
    FI laki saatavien perinnästä (a consumer's maksumuistutus with a fee at the earliest 14
    days after the due date). INVALID_ARGUMENT at $.reminder.fee."""
    days = law.get("fee_after_due_days")
    if not fee or not days or notice_date >= due_date + timedelta(days=days):
        return
    raise InvalidInput.field(
        "$.reminder.fee",
        f"a reminder fee under the law of {country} needs a reminder sent at least {days} "
        f"days after the due date {due_date.isoformat()}, not before "
        f"{(due_date + timedelta(days=days)).isoformat()}; this one is dated "
        f"{notice_date.isoformat()} ({law.get('fee_after_due_source', law.get('source', ''))})")


def check_interest_days(days: int, notice_date: date, due_date: date) -> None:
    """Refuse late-payment interest for more days than the invoice is overdue on the notice
    date: interest runs from the day after the due date (forsinkelsesrenteloven § 2,
    räntelagen 6 §, BGB § 288), so the days claimed are at most (notice date - due date).
    INVALID_ARGUMENT at $.reminder.interest.days."""
    overdue = (notice_date - due_date).days
    if days > overdue:
        raise InvalidInput.field(
            "$.reminder.interest.days",
            f"{days} days of interest, but on the notice date {notice_date.isoformat()} the "
            f"invoice due {due_date.isoformat()} is {overdue} day{'s' if overdue != 1 else ''} "
            "overdue: interest runs "
            "from the day after the due date, at most to the notice date")


def build(data: Mapping[str, Any], request: BuildRequest) -> Content:
    currency = check_currency(data["currency"], "$.currency")
    fmt = Formatter(request.locale, currency)
    text = labels(request.layout, request.locale)
    creditor, inv, rem = data["creditor"], data["invoice"], data["reminder"]
    sender_country = creditor["address"]["country"]
    customer = recipient(data["customer"], sender_country=sender_country)
    creditor_address = postal_address(creditor["address"])
    stage = rem["stage"]

    issue_date = iso_date(inv["issue_date"], "$.invoice.issue_date")
    due_date = iso_date(inv["due_date"], "$.invoice.due_date")
    notice_date = iso_date(rem["date"], "$.reminder.date") if "date" in rem else request.today
    check_invoice_dates(issue_date, due_date, notice_date)
    new_due_date = iso_date(rem["new_due_date"], "$.reminder.new_due_date")
    if new_due_date <= due_date:
        raise InvalidInput.field(
            "$.reminder.new_due_date",
            f"must be after the original due date {due_date.isoformat()}",
        )
    check_payment_term(new_due_date, notice_date, "$.reminder.new_due_date", "notice date")
    debtor_country = customer.address.country if customer.address else sender_country
    law_country, law = governing_law(request.layout, currency, debtor_country, sender_country)
    check_overdue(notice_date, due_date, law, law_country, dated="date" in rem)
    days = law.get("collection_notice_days")
    if stage == "collection_notice" and days and new_due_date < notice_date + timedelta(days=days):
        raise InvalidInput.field(
            "$.reminder.new_due_date",
            f"a collection notice under the law of {law_country} must give at least {days} "
            f"days ({law.get('source', '')}): not before "
            f"{(notice_date + timedelta(days=days)).isoformat()}",
        )
    if new_due_date <= notice_date:  # was accepted on the notice's own day
        which = "" if "date" in rem else " (no date given: the composition date)"
        raise InvalidInput.field(
            "$.reminder.new_due_date",
            f"{new_due_date.isoformat()} is not after the reminder's date "
            f"{notice_date.isoformat()}{which}: a new due date gives the debtor time to pay "
            "after the reminder is sent, so it is "
            f"{(notice_date + timedelta(days=1)).isoformat()} at the earliest")

    # every amount has the currency's decimals when read (base.amount), and is only summed
    outstanding = amount(inv["amount_outstanding"], "$.invoice.amount_outstanding",
                         currency=currency)
    if outstanding == 0:
        raise InvalidInput.field("$.invoice.amount_outstanding", "nothing is outstanding")
    fee = amount(rem["fee"], "$.reminder.fee", currency=currency)
    check_fee(fee, currency, law, law_country)
    check_fee_date(fee, notice_date, due_date, law, law_country)
    interest_data = rem.get("interest")
    interest = Decimal("0.00")
    interest_text = None
    if interest_data:
        rate = (
            annual_rate(interest_data["rate_percent"], "$.reminder.interest.rate_percent")
            if "rate_percent" in interest_data else None
        )
        if "amount" in interest_data:
            interest = amount(interest_data["amount"], "$.reminder.interest.amount",
                              currency=currency)
        else:
            assert rate is not None  # the schema requires rate_percent with days
            check_interest_days(interest_data["days"], notice_date, due_date)
            interest = late_interest(outstanding, rate, interest_data["days"])
        if rate is not None and "days" in interest_data:
            interest_text = text["interest_rate_days"].format(
                rate=fmt.percent(rate), days=interest_data["days"]
            )
        elif rate is not None:
            interest_text = text["interest_rate"].format(rate=fmt.percent(rate))
    total = round_money(outstanding + fee + interest, currency)

    account = payment_account(creditor["payment_account"], "$.creditor.payment_account")
    reference = payment_reference(data["payment"], currency, sender_country)
    notice = data.get("notice", {})
    units, cents = fmt.giro_amount(total)
    slip = payment_slip(
        shared_path=request.layout.shared_path, locale=request.locale, reference=reference,
        account=account, currency=currency, amount=total, amount_text=fmt.money(total),
        due_date=new_due_date, due_text=fmt.day(new_due_date), payee_name=creditor["name"],
        paths=SlipPaths("$.creditor.payment_account", due_date="$.reminder.new_due_date"))
    names = fill_names(payment_labels(text, reference, account), slip)
    context: dict[str, Any] = {
        "labels": context_labels(text),
        "currency": currency,
        "stage": stage,
        "title": text[f"title_{stage}"],
        "intro": notice.get("message") or text[f"intro_{stage}"].format(
            number=inv["number"], due_date=fmt.day(due_date)
        ),
        "legal_text": notice.get("legal_text") or text[f"legal_{stage}"],
        "creditor": {
            "name": creditor["name"],
            "org_number": creditor["org_number"],
            # the register of the creditor's country in the document's language (2.3.0)
            "register_label": register_label(text, sender_country),
            "address_lines": sender_lines(creditor_address),
            "phone": creditor["customer_service"]["phone"],
            "web": creditor["customer_service"]["web"],
            "email": creditor["customer_service"].get("email"),
        },
        "window": window_lines(customer, sender_country),
        "return_line": return_line(creditor["name"], creditor_address,
                                   customer.address.country if customer.address else None),
        "customer": {"customer_id": customer.customer_id, "name": customer.name},
        "notice": {"number": rem.get("number"), "date": fmt.day(notice_date)},
        "invoice": {
            "number": inv["number"],
            "description": inv.get("description"),
            "issue_date": fmt.day(issue_date),
            "due_date": fmt.day(due_date),
            "outstanding": fmt.money(outstanding),
        },
        "claim": {
            "fee": fmt.money(fee) if fee else None,
            "interest": fmt.money(interest) if interest_data else None,
            "interest_text": interest_text,
            "total": fmt.money(total),
        },
        "payment": {
            "account": account.display,
            "account_kind": account.kind,
            "reference": reference.display,
            "reference_value": reference.value,
            **names,
            **payee_account(names, account, account.display),
            "slip": slip,
            "amount": fmt.money(total),
            "amount_units": units,
            "amount_cents": cents,
            "due_date": fmt.day(new_due_date),
        },
    }
    return Content(
        recipient=customer,
        context=context,
        sender_country=sender_country,
        currency=currency,
        payment_reference=reference,
        payment_scheme=payment_scheme(data["payment"], reference, account,
                                      "$.creditor.payment_account"),
        due_date=new_due_date,
        amount_due=total,
        facts={
            "stage": stage,
            "country": customer.address.country if customer.address else sender_country,
            "days_overdue": (notice_date - due_date).days,
        },
    )
