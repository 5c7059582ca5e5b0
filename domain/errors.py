"""Domain errors with stable, machine-readable codes."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """The error codes of the public contract (SPEC §9)."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    VALIDATION_FAILED = "VALIDATION_FAILED"
    PROPERTY_NOT_DEFINED = "PROPERTY_NOT_DEFINED"
    PROPERTY_TYPE_IMMUTABLE = "PROPERTY_TYPE_IMMUTABLE"
    USER_ID_IMMUTABLE = "USER_ID_IMMUTABLE"
    MERGE_CONFLICT = "MERGE_CONFLICT"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    BLOCKED_IDENTIFIER = "BLOCKED_IDENTIFIER"
    RATE_LIMITED = "RATE_LIMITED"
    QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
    INTERNAL = "INTERNAL"


class DomainError(Exception):
    """A refused operation: a code, a readable message and the offending input, if any."""

    code: ErrorCode = ErrorCode.VALIDATION_FAILED

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class Unauthenticated(DomainError):
    code = ErrorCode.UNAUTHENTICATED


class Forbidden(DomainError):
    code = ErrorCode.FORBIDDEN


class NotFound(DomainError):
    """Nothing has that id. The message often names the id looked up, which a client may send
    at any length: it is cut to MAX_MESSAGE characters."""

    code = ErrorCode.NOT_FOUND

    MAX_MESSAGE = 200

    def __init__(self, message: str, *, field: str | None = None) -> None:
        if len(message) > self.MAX_MESSAGE:
            message = message[: self.MAX_MESSAGE - 1] + "…"
        super().__init__(message, field=field)


class ValidationFailed(DomainError):
    code = ErrorCode.VALIDATION_FAILED


class PropertyNotDefined(DomainError):
    code = ErrorCode.PROPERTY_NOT_DEFINED


class PropertyTypeImmutable(DomainError):
    code = ErrorCode.PROPERTY_TYPE_IMMUTABLE


class UserIdImmutable(DomainError):
    code = ErrorCode.USER_ID_IMMUTABLE


class MergeConflict(DomainError):
    code = ErrorCode.MERGE_CONFLICT


class LimitExceeded(DomainError):
    code = ErrorCode.LIMIT_EXCEEDED


class BlockedIdentifier(DomainError):
    code = ErrorCode.BLOCKED_IDENTIFIER


class RateLimited(DomainError):
    code = ErrorCode.RATE_LIMITED


class Contention(Exception):
    """A race was lost more often than the bounded retry allows; the caller may try again."""
