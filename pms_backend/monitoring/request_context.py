"""The id of the request being served, for log lines and outbox events written under it."""

from __future__ import annotations

import contextvars
import logging

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("pms_request_id", default="")


def current_request_id() -> str:
    """Return the id of the request being served, or ``""`` outside a request."""
    return _request_id.get()


def bind_request_id(request_id: str) -> contextvars.Token:
    """Make ``request_id`` current; hand the token back to ``unbind_request_id``."""
    return _request_id.set(request_id)


def unbind_request_id(token: contextvars.Token) -> None:
    _request_id.reset(token)


class RequestIdLogFilter(logging.Filter):
    """Give every log record a ``request_id`` attribute (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = _request_id.get() or "-"
        return True
