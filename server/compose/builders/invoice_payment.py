"""The b2b-invoice input's payment instructions (BG-16): the payment means (BT-81..91), coded
the way the receiver expects, and the creditor identifiers (BT-90) they bring.

Separate from `invoice_input` because how a payment is coded depends on the account and the
countries (Swedish giro, IBAN, Norwegian account, Danish FIK, cards, direct debit), which is
a concept of its own; the payment reference itself is `base.payment_reference`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.compose.builders.base import payment_account
from server.compose.builders.invoice_reader import InvoiceReader, required_text, text
from server.compose.en16931 import Identifier, Party, PaymentMeans
from server.compose.model import PaymentReference
from server.compose.payments.accounts import PaymentAccount

__all__ = ["credit_transfer", "fik_means", "has_payment_reference", "is_fik", "payment_means",
           "statement_means"]


def has_payment_reference(payment: Mapping[str, Any] | None) -> bool:
    """Whether `payment` gives a reference or the base to make one from."""
    return bool(payment) and ("reference" in payment or "reference_base" in payment)


def _transfer(account_data: Mapping[str, Any], path: str, seller: Party,
              reference: PaymentReference | None, domestic_dk: bool) -> PaymentMeans:
    """A credit transfer to the seller's account as `payment_account` reads it at `path`
    (see `credit_transfer`); the BIC is the one given, as given."""
    account = payment_account(account_data, path)
    return credit_transfer(account, seller.name or None, reference, domestic_dk,
                           bic=text(account_data.get("bic")))


def credit_transfer(account: PaymentAccount, payee: str | None,
                    reference: PaymentReference | None, domestic_dk: bool, *,
                    bic: str | None = None) -> PaymentMeans:
    """A credit transfer (BG-17) to `account`, coded the way the receiver expects (UNCL 4461):
    Swedish giro accounts are 30 + SE:BANKGIRO / SE:PLUSGIRO (SE-R-007..012), an IBAN is SEPA
    58, any other account (Norwegian, Polish NRB, UK sort code) 30, which between Danish
    parties is 31 (DK-R-005 admits no 30). `bic`: BT-86 where the kind is not a giro."""
    code = "30"
    if account.kind == "bankgiro":
        bic = "SE:BANKGIRO"
    elif account.kind == "plusgiro":
        bic = "SE:PLUSGIRO"
    elif account.kind == "iban":
        code = "58"
    if domestic_dk and code == "30":
        code = "31"
    return PaymentMeans(code=code, account=account.number, bic=bic, account_name=payee,
                        reference=reference)


def is_fik(reference: PaymentReference | None) -> bool:
    """Whether `reference` is a Danish FIK (indbetalingskort) line, paid as means 93."""
    return reference is not None and reference.scheme in ("fik", "fik73", "fik75")


def fik_means(reference: PaymentReference, payee: str | None) -> PaymentMeans:
    """Payment means 93 (reference giro, FIK): the 8-digit creditor number (from the FIK
    line `+71<...>+<creditor><`) as BT-84 and the reference as BT-83 (DK-R-010/011)."""
    creditor = reference.value.rstrip("<").rpartition("+")[2]
    return PaymentMeans(code="93", account=creditor, account_name=payee, reference=reference)


def statement_means(account: PaymentAccount, reference: PaymentReference | None,
                    payee: str | None, seller_country: str | None,
                    customer_country: str | None) -> PaymentMeans:
    """The one payment means of a statement that names no means of its own (card invoice):
    FIK 93 when the reference is a FIK line, else a `credit_transfer` to `account` (with its
    BIC). Coded as the b2b-invoice's default means, so both pass the same rules."""
    if is_fik(reference):
        return fik_means(reference, payee)
    return credit_transfer(account, payee, reference,
                           seller_country == "DK" and customer_country == "DK", bic=account.bic)


def payment_means(reader: InvoiceReader, data: Mapping[str, Any], seller: Party,
                   reference: PaymentReference | None, customer_country: str | None,
                   currency: str) -> tuple[list[PaymentMeans], list[Identifier]]:
    """BG-16 from `payment.means`, or one credit transfer to `seller.payment_account`.
    Returns the means and the creditor identifiers (BT-90) they bring."""
    seller_country = seller.address.country if seller.address else None
    domestic_dk = seller_country == "DK" and customer_country == "DK"
    creditor_ids: list[Identifier] = []
    explicit = (data.get("payment") or {}).get("means") or []
    means: list[PaymentMeans] = []
    if is_fik(reference) and not explicit:
        means.append(fik_means(reference, seller.name or None))
    for i, item in enumerate(explicit):
        path = f"$.payment.means[{i}]"
        code = str(item["code"])
        if "account" in item:
            transfer = _transfer(item["account"], f"{path}.account", seller, reference,
                                 domestic_dk)
            means.append(PaymentMeans(code=code, account=transfer.account, bic=transfer.bic,
                                      account_name=transfer.account_name, reference=reference,
                                      text=text(item.get("text"))))
            continue
        card = item.get("card") or {}
        debit = item.get("direct_debit") or {}
        if debit.get("creditor_id"):
            creditor_ids.append(Identifier(required_text(debit["creditor_id"]), "SEPA"))
        means.append(PaymentMeans(
            code=code, reference=reference, text=text(item.get("text")),
            # BT-87 as EN 16931 writes it: the shown digits only, at most 10 (BR-51)
            card_pan="".join(c for c in card.get("pan", "") if c.isdigit()) or None,
            card_holder=text(card.get("holder")),
            card_network=text(card.get("network")) if card else None,
            mandate_id=text(debit.get("mandate_id")),
            debited_account=text(debit.get("debited_account")),
        ))
    account_data = data["seller"].get("payment_account")
    if account_data and not explicit and not means:  # FIK is the one means (UBL-SR-47)
        means.append(_transfer(account_data, "$.seller.payment_account", seller, reference,
                               domestic_dk))
    return means, creditor_ids
