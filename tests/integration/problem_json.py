"""Assertions about RFC 9457 problem responses and about writes that must leave no trace."""

from __future__ import annotations

from contextlib import contextmanager

PROBLEM_CONTENT_TYPE = "application/problem+json"


def assert_problem(response, status: int, code: str | None = None) -> dict:
    """Assert ``response`` is a problem+json answer with ``status`` (and ``code``)."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].split(";")[0].strip() == PROBLEM_CONTENT_TYPE
    body = response.json()
    for member in ("type", "title", "status", "detail", "code"):
        assert member in body, f"problem body lacks {member!r}: {body}"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["type"].startswith("https://")
    if code is not None:
        assert body["code"] == code, body
    return body


def row_counts() -> dict[str, int]:
    from audit.models import AuditLog
    from catalog.models import Category, Product
    from pms_backend.events.models import Event

    return {
        "products": Product.objects.count(),
        "categories": Category.objects.count(),
        "audit": AuditLog.objects.count(),
        "events": Event.objects.count(),
    }


@contextmanager
def leaves_no_trace():
    """Assert the block adds or removes no product, category, audit entry or event."""
    before = row_counts()
    yield
    assert row_counts() == before
