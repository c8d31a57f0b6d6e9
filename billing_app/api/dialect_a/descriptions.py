"""What each field of dialect A means, by name: one text for a name, whether it is in a
request, an update or a response (a model may still describe a field its own way). Shown
in `/openapi.json` and on `/docs`."""

from __future__ import annotations

FIELDS = {
    # common
    "id": "The object's id (a UUID).",
    "created_at": "When the object was created (ISO 8601, UTC offset).",
    "updated_at": "When the object was last changed (ISO 8601, UTC offset).",
    "currency": "ISO 4217 currency code, e.g. EUR.",
    "timezone": "IANA time zone, e.g. Europe/Berlin: dates on documents are in it.",
    "document_locale": "Language and number format of printed documents, e.g. de or en-GB.",
    "invoice_grace_period": "Grace period in days, kept with the object (not applied to "
    "one-off invoices).",
    "net_payment_term": "Days from issue to due date. Omitted on a customer: the billing "
    "entity's term applies.",
    "email": "Email address.",
    "name": "Display name.",
    "code": "The object's code, unique in the account; it names the object in paths.",
    "description": "Free text.",
    "skip": "How many objects to skip (paging).",
    "limit": "How many objects to answer at most (paging).",
    "order_by": 'Field to order by: field, -field, "field desc" or field:asc, over the '
    "resource's whitelist; the id breaks ties.",
    "tax_code": "Code of a tax of the account: the default rate of this object's invoices "
    "(the tax precedence: line, customer, billing entity, account).",
    "billing_entity_code": "Code of the billing entity that issues this customer's invoices "
    "(omitted: the account's default entity).",
    # invoices
    "customer_id": "The invoiced customer's id.",
    "subscription_id": "The subscription the invoice bills, if any.",
    "billing_entity_id": "The billing entity (issuer) of the invoice; omitted: the "
    "customer's entity, else the account's default.",
    "line_items": "The invoice lines, in order (at least one).",
    "due_date": "When payment is due (ISO 8601 with offset). Omitted: issue date plus the "
    "net payment term, set at finalization.",
    "status": "draft, finalized, paid or voided. In an update: move the invoice along its "
    "lifecycle (draft to finalized to paid; finalized to voided).",
    "issued_at": "When the invoice was finalized (set by the server).",
    "paid_at": "When the invoice was paid. In an update to status paid: the payment date "
    "(omitted: now).",
    "voided_at": "When the invoice was voided.",
    "invoice_number": "The printed invoice number (empty on drafts).",
    "number": "The invoice's sequence number in its billing entity's series (null on drafts).",
    "invoice_type": "one_off or subscription.",
    "billing_period_start": "Start of the billed period.",
    "billing_period_end": "End of the billed period.",
    "subtotal_cents": "Lines before tax, minor units, as a decimal string.",
    "tax_amount_cents": "Tax of all lines, minor units.",
    "total_cents": "Amount to pay: subtotal plus tax less credits and coupons, minor units.",
    "prepaid_credit_amount_cents": "Prepaid credit (wallet) applied, minor units.",
    "coupons_amount_cents": "Coupons and credits applied, minor units.",
    "progressive_billing_credit_amount_cents": "Amount already billed progressively, minor units.",
    "quantity": "How many units (up to 6 decimals, greater than 0).",
    "unit_price": "Price of one unit in minor units (up to 6 decimals).",
    "amount": "The line's amount in whole minor units; must equal quantity x unit price, "
    "rounded half-even.",
    "charge_id": "The usage charge the line bills, if any.",
    "metric_code": "The usage metric the line bills, if any.",
    "tax_rate": "The line's tax rate in percent, e.g. 19; omitted: the customer's, billing "
    "entity's or account's rate applies.",
    # customers
    "external_id": "Your id for the customer, unique in the account (the customer's handle "
    "in dialect B).",
    "billing_metadata": "Free-form JSON object kept with the customer.",
    # billing entities
    "legal_name": "Legal name printed on invoices.",
    "address_line1": "Street address.",
    "address_line2": "Address, second line.",
    "city": "City.",
    "state": "State or province.",
    "country": "ISO 3166-1 alpha-2 country code, e.g. DE.",
    "zip_code": "Postal code.",
    "tax_id": "VAT or tax registration number printed on invoices.",
    "invoice_prefix": "Prefix of the printed invoice number.",
    "next_invoice_number": "The number the next finalized invoice takes.",
    "invoice_footer": "Text printed at the foot of every invoice.",
    "is_default": "Whether this entity issues the invoices of customers without one (one "
    "default per account).",
    "number_pattern": "How the invoice number is printed, e.g. {prefix}-{number:06} (the default).",
    # taxes
    "rate": 'Tax rate in percent, 0 to 100, e.g. 19 or "7.5".',
    "category": "Free-form grouping of taxes, e.g. standard or reduced.",
    "applied_to_organization": "Whether this tax is the account's organisation-wide "
    "default. Setting it replaces the previous default (only one at a time).",
    # errors
    "detail": "What went wrong: a message, or for 422 the list of invalid fields.",
    "loc": "Where the invalid value is: body, query or path, then the field's path.",
    "msg": "What is wrong with it.",
    "type": "The kind of error, e.g. missing or value_error.",
}

# Example values by field name, for the examples on `/docs` (other fields get one made
# from their type).
EXAMPLES = {
    "external_id": "acme",
    "name": "ACME Corporation",
    "email": "billing@acme.example",
    "currency": "EUR",
    "timezone": "Europe/Berlin",
    "document_locale": "de",
    "code": "vat_19",
    "rate": "19",
    "category": "standard",
    "description": "Consulting, November",
    "quantity": "2",
    "unit_price": "15000",
    "amount": "30000",
    "tax_rate": "19",
    "tax_code": "vat_19",
    "billing_entity_code": "default",
    "legal_name": "ACME Corporation GmbH",
    "address_line1": "Hauptstraße 1",
    "city": "Berlin",
    "zip_code": "10115",
    "country": "DE",
    "tax_id": "DE123456789",
    "invoice_prefix": "INV",
    "number_pattern": "{prefix}-{number:06}",
    "invoice_number": "INV-000042",
    "number": 42,
    "status": "finalized",
    "invoice_type": "one_off",
    "subtotal_cents": "30000",
    "tax_amount_cents": "5700",
    "total_cents": "35700",
    "prepaid_credit_amount_cents": "0",
    "coupons_amount_cents": "0",
    "progressive_billing_credit_amount_cents": "0",
    "net_payment_term": 14,
    "order_by": "-created_at",
    "replaced_organization_tax": "vat_16",
    "billing_metadata": {"crm_id": "4711"},
}
