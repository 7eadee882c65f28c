"""The one error type services raise; the API turns it into problem+json."""

from typing import Any


class DomainError(Exception):
    """A refusal a client can act on: a stable code, a sentence, and details.

    ``status`` is the HTTP status the API answers with; commands and the admin show
    ``detail`` and ignore it.
    """

    status = 400

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        errors: dict[str, list[str]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = str(code)
        self.detail = detail
        self.errors = errors or {}
        self.extra = extra or {}


class InvalidInput(DomainError):
    status = 400


class Forbidden(DomainError):
    """The actor's credentials do not reach what the action would expose."""

    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409
