"""Domain errors, raised by services and mapped once per door (API dialect or HTML page).

Services never know about HTTP; each error carries what every door needs to answer well:
a message, for invalid input the path of the offending field, and for a refused action a
`reason` (one of the constants below) that a door may map to its own error code. No
dialect codes or HTTP statuses here: those live in the doors (api/dialect_b/blueprint.py
maps reasons to Reepay's codes; dialect A and the pages answer by the error's class).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

# Why an action was refused (InvalidState.reason). None: no more specific reason.
ALREADY_SETTLED: Final = "already_settled"
ALREADY_CANCELLED: Final = "already_cancelled"
INVOICE_WRONG_STATE: Final = "invoice_wrong_state"
CHARGE_IN_PROGRESS: Final = "charge_in_progress"
CHARGE_DECLINED: Final = "charge_declined"
NO_PAYMENT_METHOD: Final = "no_payment_method"
NOTHING_TO_INVOICE: Final = "nothing_to_invoice"
SUBSCRIPTION_EXPIRED: Final = "subscription_expired"
SUBSCRIPTION_ON_HOLD: Final = "subscription_on_hold"
SUBSCRIPTION_NOT_ON_HOLD: Final = "subscription_not_on_hold"
SUBSCRIPTION_CANCELLED: Final = "subscription_cancelled"
COST_NOT_PENDING: Final = "cost_not_pending"
CREDIT_NOT_PENDING: Final = "credit_not_pending"
COUPON_ALREADY_USED: Final = "coupon_already_used"
COUPON_CODE_TAKEN: Final = "coupon_code_taken"
ADD_ON_ALREADY_ADDED: Final = "add_on_already_added"
ADD_ON_QUANTITY_NOT_ALLOWED: Final = "add_on_quantity_not_allowed"
ADD_ON_NOT_ELIGIBLE: Final = "add_on_not_eligible"


class DomainError(Exception):
    """Base of every rule the service layer enforces. `reason`: why, for a door that
    answers differently per reason (one of the constants above), else None."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason


class NotFound(DomainError):
    """The object does not exist for this account (another account's objects included)."""

    def __init__(self, resource: str, message: str | None = None):
        super().__init__(message or f"{resource} not found")
        self.resource = resource


class InvalidInput(DomainError):
    """Input that breaks a business rule, naming the field (a path into the request)."""

    def __init__(self, loc: Sequence[str | int], message: str, kind: str = "value_error"):
        super().__init__(message)
        self.loc = tuple(loc)
        self.kind = kind


class Duplicate(DomainError):
    """A handle, code or external id that is already taken in this account."""

    def __init__(self, resource: str, message: str | None = None):
        super().__init__(message or f"{resource} already exists")
        self.resource = resource


class InvalidState(DomainError):
    """The action is not allowed in the object's current state (e.g. editing a finalized
    invoice); `reason` says which rule refused it, where a door distinguishes them."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message, reason)


class InUse(DomainError):
    """Deleting this would orphan other records (e.g. a customer with invoices)."""


IdempotencyReason = Literal["invalid_key", "mismatch", "in_progress"]


class IdempotencyConflict(DomainError):
    """An Idempotency-Key that cannot run this request. `reason`: "invalid_key" (empty or
    too long), "mismatch" (the key was used with another request) or "in_progress" (the
    first request with the key still runs)."""

    reason: IdempotencyReason

    def __init__(self, message: str, reason: IdempotencyReason):
        super().__init__(message, reason)
