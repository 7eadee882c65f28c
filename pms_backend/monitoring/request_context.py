"""The request being served: its id, for log lines and outbox events written under it, and
a memo of what it has looked up once (a value read per request, not per use)."""

from __future__ import annotations

import contextvars
import logging
from typing import Any

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("pms_request_id", default="")
_memo: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "pms_request_memo", default=None
)


def current_request_id() -> str:
    """Return the id of the request being served, or ``""`` outside a request."""
    return _request_id.get()


def request_memo() -> dict[str, Any] | None:
    """Return a dict that lives as long as the request being served (``None`` outside a
    request): for values a request looks up once however often it uses them."""
    return _memo.get()


def bind_request_id(request_id: str) -> tuple[contextvars.Token, contextvars.Token]:
    """Make ``request_id`` current, with a fresh memo; hand the tokens back to
    ``unbind_request_id``."""
    return _request_id.set(request_id), _memo.set({})


def unbind_request_id(tokens: tuple[contextvars.Token, contextvars.Token]) -> None:
    id_token, memo_token = tokens
    _memo.reset(memo_token)
    _request_id.reset(id_token)


class RequestIdLogFilter(logging.Filter):
    """Give every log record a ``request_id`` attribute (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = _request_id.get() or "-"
        return True
