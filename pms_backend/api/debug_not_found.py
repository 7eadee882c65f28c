"""Development answers an unknown API route as production does.

With ``DEBUG`` on, Django answers a URL that resolves nowhere with its HTML debug page and
never consults ``handler404``; a storefront developer would then see a page no production
server ever sends. This middleware (installed only in debug) swaps that page, on ``/api/``
paths, for the problem+json 404 of ``handler404``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from pms_backend.api.problems import PROBLEM_CONTENT_TYPE, handler404


class ApiNotFoundInDebugMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code == 404
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE)
        ):
            return handler404(request)
        return response
