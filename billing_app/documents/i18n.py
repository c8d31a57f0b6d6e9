# ruff: noqa: RUF001, RUF002  (typographic quotes, dashes and minus signs are the point here)
"""The printed invoice's texts in the customer's document locale, and Babel formatting.

A small catalogue in code rather than gettext catalogs: the print template is the only
translated text in the app (the browser pages are English), four languages of about forty
short strings each are easy to review side by side here, and there is no compile step
(`.po` -> `.mo`) to forget in CI or in a wheel. `test_pdf_i18n` checks that every language
has every key and the same placeholders. Money goes through `money.format_money` (Babel
patterns, ISO 4217 decimals); dates, numbers and percentages through Babel too.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_decimal, parse_pattern

from ..money import format_money, format_unit_amount

DEFAULT_LANGUAGE = "en"

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "invoice": "Invoice",
        "draft_mark": "DRAFT",
        "draft_notice": "Draft: not a valid invoice. The number is provisional.",
        "invoice_number": "Invoice number",
        "issue_date": "Issue date",
        "due_date": "Due date",
        "service_period": "Service period",
        "billing_period": "Billing period",
        "purchase_order": "Purchase order",
        "cost_center": "Cost center",
        "customer_number": "Customer number",
        "bill_to": "Bill to",
        "ship_to": "Ship to",
        "tax_id": "VAT ID",
        "email": "Email",
        "position": "#",
        "description": "Description",
        "quantity": "Qty",
        "unit_price": "Unit price",
        "vat_rate": "VAT",
        "amount": "Amount",
        "incl_vat": "incl. VAT",
        "discount": "Discount",
        "credit": "Credit",
        "period": "{start} – {end}",
        "vat_breakdown": "VAT breakdown",
        "rate": "Rate",
        "net": "Net",
        "vat": "VAT",
        "gross": "Gross",
        "subtotal": "Subtotal",
        "discounts": "Discounts",
        "credits": "Credits",
        "net_amount": "Net amount",
        "vat_amount": "VAT",
        "progressive_credit": "Progressive billing credit",
        "total": "Total",
        "prepaid_credit": "Prepaid credit",
        "amount_due": "Amount due",
        "payment_terms": "Payment terms",
        "pay_by": "Please pay {amount} by {date}.",
        "pay_reference": "Please quote the invoice number {number} with your payment.",
        "nothing_due": "Nothing is due on this invoice.",
        "paid_mark": "PAID",
        "paid": "Paid",
        "payment": "Payment",
        "paid_by_card": "Paid by card on {date}. Nothing is due.",
        "paid_by_bank_transfer": "Paid by bank transfer on {date}. Nothing is due.",
        "paid_by_cash": "Paid in cash on {date}. Nothing is due.",
        "paid_by_check": "Paid by cheque on {date}. Nothing is due.",
        "paid_by_other": "Paid on {date}. Nothing is due.",
        "paid_by_marked_paid": "Marked as paid on {date}. Nothing is due.",
        "paid_by_prepaid_credit": "Paid in full with prepaid credit. Nothing is due.",
        "paid_by_nothing_due": "Nothing is due on this invoice.",
        "void_mark": "VOID",
        "void_notice": "This invoice has been voided. Nothing is due; do not pay it.",
        "void_draft_title": "VOID – not an invoice",
        "void_draft_notice": (
            "Voided before it was issued: "
            "this is not an invoice, it has no number and nothing is due."
        ),
        "page_of": "Page {page} of {pages}",
    },
    "de": {
        "invoice": "Rechnung",
        "draft_mark": "ENTWURF",
        "draft_notice": "Entwurf: keine gültige Rechnung. Die Nummer ist vorläufig.",
        "invoice_number": "Rechnungsnummer",
        "issue_date": "Rechnungsdatum",
        "due_date": "Fällig am",
        "service_period": "Leistungszeitraum",
        "billing_period": "Abrechnungszeitraum",
        "purchase_order": "Bestellnummer",
        "cost_center": "Kostenstelle",
        "customer_number": "Kundennummer",
        "bill_to": "Rechnungsadresse",
        "ship_to": "Lieferadresse",
        "tax_id": "USt-IdNr.",
        "email": "E-Mail",
        "position": "Pos.",
        "description": "Beschreibung",
        "quantity": "Menge",
        "unit_price": "Einzelpreis",
        "vat_rate": "USt.",
        "amount": "Betrag",
        "incl_vat": "inkl. USt.",
        "discount": "Rabatt",
        "credit": "Gutschrift",
        "period": "{start} – {end}",
        "vat_breakdown": "Umsatzsteuer nach Steuersätzen",
        "rate": "Steuersatz",
        "net": "Netto",
        "vat": "USt.",
        "gross": "Brutto",
        "subtotal": "Zwischensumme",
        "discounts": "Rabatte",
        "credits": "Gutschriften",
        "net_amount": "Nettobetrag",
        "vat_amount": "Umsatzsteuer",
        "progressive_credit": "Anrechnung Teilabrechnung",
        "total": "Gesamtbetrag",
        "prepaid_credit": "Verrechnetes Guthaben",
        "amount_due": "Zahlbetrag",
        "payment_terms": "Zahlungsbedingungen",
        "pay_by": "Bitte zahlen Sie {amount} bis zum {date}.",
        "pay_reference": "Bitte geben Sie bei der Zahlung die Rechnungsnummer {number} an.",
        "nothing_due": "Aus dieser Rechnung ist kein Betrag offen.",
        "paid_mark": "BEZAHLT",
        "paid": "Bezahlt",
        "payment": "Zahlung",
        "paid_by_card": "Am {date} per Karte bezahlt. Es ist nichts offen.",
        "paid_by_bank_transfer": "Am {date} per Überweisung bezahlt. Es ist nichts offen.",
        "paid_by_cash": "Am {date} bar bezahlt. Es ist nichts offen.",
        "paid_by_check": "Am {date} per Scheck bezahlt. Es ist nichts offen.",
        "paid_by_other": "Am {date} bezahlt. Es ist nichts offen.",
        "paid_by_marked_paid": "Am {date} als bezahlt erfasst. Es ist nichts offen.",
        "paid_by_prepaid_credit": "Vollständig mit Guthaben bezahlt. Es ist nichts offen.",
        "paid_by_nothing_due": "Aus dieser Rechnung ist kein Betrag offen.",
        "void_mark": "STORNIERT",
        "void_notice": "Diese Rechnung wurde storniert. Es ist nichts zu zahlen.",
        "void_draft_title": "STORNIERT – keine Rechnung",
        "void_draft_notice": (
            "Vor der Ausstellung storniert: keine Rechnung, ohne Nummer, es ist nichts zu zahlen."
        ),
        "page_of": "Seite {page} von {pages}",
    },
    "fr": {
        "invoice": "Facture",
        "draft_mark": "BROUILLON",
        "draft_notice": "Brouillon : ce n’est pas une facture valable. Le numéro est provisoire.",
        "invoice_number": "Numéro de facture",
        "issue_date": "Date d’émission",
        "due_date": "Date d’échéance",
        "service_period": "Période de prestation",
        "billing_period": "Période de facturation",
        "purchase_order": "Bon de commande",
        "cost_center": "Centre de coûts",
        "customer_number": "Numéro client",
        "bill_to": "Facturer à",
        "ship_to": "Livrer à",
        "tax_id": "N° de TVA",
        "email": "E-mail",
        "position": "N°",
        "description": "Désignation",
        "quantity": "Qté",
        "unit_price": "Prix unitaire",
        "vat_rate": "TVA",
        "amount": "Montant",
        "incl_vat": "TTC",
        "discount": "Remise",
        "credit": "Avoir",
        "period": "{start} – {end}",
        "vat_breakdown": "Détail de la TVA",
        "rate": "Taux",
        "net": "HT",
        "vat": "TVA",
        "gross": "TTC",
        "subtotal": "Sous-total HT",
        "discounts": "Remises",
        "credits": "Avoirs",
        "net_amount": "Total HT",
        "vat_amount": "TVA",
        "progressive_credit": "Crédit de facturation progressive",
        "total": "Total TTC",
        "prepaid_credit": "Crédit prépayé",
        "amount_due": "Net à payer",
        "payment_terms": "Conditions de paiement",
        "pay_by": "Merci de régler {amount} au plus tard le {date}.",
        "pay_reference": "Merci d’indiquer le numéro de facture {number} lors du paiement.",
        "nothing_due": "Aucun montant n’est dû sur cette facture.",
        "paid_mark": "PAYÉE",
        "paid": "Payé",
        "payment": "Paiement",
        "paid_by_card": "Payée par carte le {date}. Aucun montant n’est dû.",
        "paid_by_bank_transfer": "Payée par virement le {date}. Aucun montant n’est dû.",
        "paid_by_cash": "Payée en espèces le {date}. Aucun montant n’est dû.",
        "paid_by_check": "Payée par chèque le {date}. Aucun montant n’est dû.",
        "paid_by_other": "Payée le {date}. Aucun montant n’est dû.",
        "paid_by_marked_paid": "Enregistrée comme payée le {date}. Aucun montant n’est dû.",
        "paid_by_prepaid_credit": "Payée intégralement par crédit prépayé. Aucun montant n’est dû.",
        "paid_by_nothing_due": "Aucun montant n’est dû sur cette facture.",
        "void_mark": "ANNULÉE",
        "void_notice": "Cette facture a été annulée. Aucun montant n’est dû ; ne la payez pas.",
        "void_draft_title": "ANNULÉ – ce n’est pas une facture",
        "void_draft_notice": (
            "Annulé avant émission : "
            "ce n’est pas une facture, il n’a pas de numéro et aucun montant n’est dû."
        ),
        "page_of": "Page {page} sur {pages}",
    },
    "da": {
        "invoice": "Faktura",
        "draft_mark": "KLADDE",
        "draft_notice": "Kladde: ikke en gyldig faktura. Nummeret er foreløbigt.",
        "invoice_number": "Fakturanummer",
        "issue_date": "Fakturadato",
        "due_date": "Forfaldsdato",
        "service_period": "Leveringsperiode",
        "billing_period": "Faktureringsperiode",
        "purchase_order": "Indkøbsordre",
        "cost_center": "Omkostningssted",
        "customer_number": "Kundenummer",
        "bill_to": "Faktureres til",
        "ship_to": "Leveres til",
        "tax_id": "Momsnr.",
        "email": "E-mail",
        "position": "Nr.",
        "description": "Beskrivelse",
        "quantity": "Antal",
        "unit_price": "Enhedspris",
        "vat_rate": "Moms",
        "amount": "Beløb",
        "incl_vat": "inkl. moms",
        "discount": "Rabat",
        "credit": "Kredit",
        "period": "{start} – {end}",
        "vat_breakdown": "Moms pr. sats",
        "rate": "Sats",
        "net": "Netto",
        "vat": "Moms",
        "gross": "Brutto",
        "subtotal": "Subtotal",
        "discounts": "Rabatter",
        "credits": "Kreditter",
        "net_amount": "Nettobeløb",
        "vat_amount": "Moms",
        "progressive_credit": "Fradrag for delfakturering",
        "total": "I alt",
        "prepaid_credit": "Forudbetalt kredit",
        "amount_due": "Til betaling",
        "payment_terms": "Betalingsbetingelser",
        "pay_by": "Betal venligst {amount} senest {date}.",
        "pay_reference": "Angiv venligst fakturanummer {number} ved betaling.",
        "nothing_due": "Der er intet beløb til betaling på denne faktura.",
        "paid_mark": "BETALT",
        "paid": "Betalt",
        "payment": "Betaling",
        "paid_by_card": "Betalt med kort den {date}. Der er intet at betale.",
        "paid_by_bank_transfer": "Betalt med bankoverførsel den {date}. Der er intet at betale.",
        "paid_by_cash": "Betalt kontant den {date}. Der er intet at betale.",
        "paid_by_check": "Betalt med check den {date}. Der er intet at betale.",
        "paid_by_other": "Betalt den {date}. Der er intet at betale.",
        "paid_by_marked_paid": "Registreret som betalt den {date}. Der er intet at betale.",
        "paid_by_prepaid_credit": "Betalt fuldt ud med forudbetalt kredit. Der er intet at betale.",
        "paid_by_nothing_due": "Der er intet beløb til betaling på denne faktura.",
        "void_mark": "ANNULLERET",
        "void_notice": "Denne faktura er annulleret. Der er intet at betale.",
        "void_draft_title": "ANNULLERET – ikke en faktura",
        "void_draft_notice": (
            "Annulleret før udstedelse: ikke en faktura, uden nummer, der er intet at betale."
        ),
        "page_of": "Side {page} af {pages}",
    },
}

LANGUAGES = tuple(TEXTS)


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@lru_cache(maxsize=64)
def _resolve(locale: str) -> tuple[str, str]:
    """(language of the texts, Babel locale for numbers and dates). `de-AT` -> ("de",
    "de_AT"); a language without texts falls back to English for both, so a document
    never mixes English words with, say, Spanish number formats."""
    tag = (locale or "").replace("-", "_").strip()
    language = tag.split("_")[0].lower()
    if language not in TEXTS:
        return DEFAULT_LANGUAGE, DEFAULT_LANGUAGE
    try:
        parsed = Locale.parse(tag)
    except (ValueError, UnknownLocaleError):
        return language, language
    return language, str(parsed) if parsed.language == language else language


@lru_cache(maxsize=64)
def _percent_pattern(babel_locale: str) -> tuple[Locale, object]:
    loc = Locale.parse(babel_locale)
    pattern = parse_pattern(loc.percent_formats[None].pattern)
    # VAT rates like 7.7 % or 5.5 % keep their decimals; whole rates show none.
    pattern.frac_prec = (0, 6)
    return loc, pattern


@dataclass(frozen=True)
class DocumentLocale:
    """Texts and formatters of one document: `t.invoice`, `fmt.money(...)`."""

    language: str
    babel_locale: str

    @classmethod
    def for_tag(cls, locale: str | None) -> DocumentLocale:
        language, babel_locale = _resolve(locale or DEFAULT_LANGUAGE)
        return cls(language, babel_locale)

    @property
    def lang_attr(self) -> str:
        """For `<html lang>`: BCP 47, e.g. `de-AT`."""
        return self.babel_locale.replace("_", "-")

    def text(self, key: str, **values: str) -> str:
        template = TEXTS[self.language].get(key) or TEXTS[DEFAULT_LANGUAGE][key]
        return template.format(**values) if values else template

    def money(self, amount_minor: int, currency: str) -> str:
        return format_money(amount_minor, currency, self.babel_locale)

    def unit_money(self, unit_minor: Decimal, currency: str) -> str:
        return format_unit_amount(unit_minor, currency, self.babel_locale)

    def negative_money(self, amount_minor: int, currency: str) -> str:
        """A deduction shown as such: `−€5.00` (a true minus sign)."""
        return "\u2212" + self.money(amount_minor, currency)

    def long_date(self, value: date | None) -> str:
        return "" if value is None else format_date(value, format="long", locale=self.babel_locale)

    def period(self, start: date | None, end: date | None) -> str:
        if start is None and end is None:
            return ""
        if start == end or end is None:
            return self.long_date(start)
        if start is None:
            return self.long_date(end)
        return self.text("period", start=self.long_date(start), end=self.long_date(end))

    def quantity(self, value: Decimal) -> str:
        return format_decimal(value, locale=self.babel_locale, decimal_quantization=False)

    def percent(self, percent: Decimal) -> str:
        """19 -> `19 %` (de), `19%` (en); 7.5 keeps its decimal."""
        loc, pattern = _percent_pattern(self.babel_locale)
        return str(pattern.apply(percent / 100, loc))  # type: ignore[attr-defined]

    def country(self, code: str | None) -> str | None:
        if not code:
            return None
        return Locale.parse(self.babel_locale).territories.get(code.upper(), code)

    def css_page_counter(self) -> str:
        """The `content` value of the page-number margin box: `"Seite " counter(page) ...`."""
        parts: list[str] = []
        for literal, field, _, _ in string.Formatter().parse(TEXTS[self.language]["page_of"]):
            if literal:
                parts.append(css_string(literal))
            if field in ("page", "pages"):
                parts.append(f"counter({field})")
        return " ".join(parts)


def css_string(text: str) -> str:
    """A CSS string literal that cannot end the string, the rule or a <style> element."""
    out = []
    for ch in text:
        if ch.isalnum() or ch in " .,:;!?-–()/'":
            out.append(ch)
        else:
            out.append(f"\\{ord(ch):x} ")
    return '"' + "".join(out) + '"'
