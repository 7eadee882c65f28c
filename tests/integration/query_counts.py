"""Counting the queries of a read."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext


def queries_for(client, path: str, params: dict, rows: int) -> int:
    """The queries of ``GET path?params``, which must answer ``rows`` rows (a page's
    ``results`` or a plain list)."""
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path, params)
    assert response.status_code == 200, response.content
    body = response.json()
    assert len(body["results"] if isinstance(body, dict) else body) == rows
    return len(ctx.captured_queries)
