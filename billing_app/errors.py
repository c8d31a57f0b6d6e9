"""Domain errors, raised by services and mapped once per door (API dialect or HTML page).

Services never know about HTTP; each error carries what every door needs to answer well:
a message, and for invalid input the path of the offending field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal


class DomainError(Exception):
    """Base of every rule the service layer enforces."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


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
    invoice). `code` is the dialect B error code where one is defined."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


class InUse(DomainError):
    """Deleting this would orphan other records (e.g. a customer with invoices)."""


class IdempotencyConflict(DomainError):
    """An Idempotency-Key that cannot run this request. `reason`: "invalid_key" (empty or
    too long), "mismatch" (the key was used with another request) or "in_progress" (the
    first request with the key still runs)."""

    def __init__(self, message: str, reason: Literal["invalid_key", "mismatch", "in_progress"]):
        super().__init__(message)
        self.reason = reason
