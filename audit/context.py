"""The request being served, for audit entries written by receivers that cannot see it."""

from __future__ import annotations

import contextvars

from audit.actors import Actor

_request: contextvars.ContextVar = contextvars.ContextVar("pms_request", default=None)


def current_actor(default_job: str = "unknown") -> Actor:
    """Return the actor of the current request, or a system actor outside requests."""
    request = _request.get()
    return Actor.from_request(request) if request is not None else Actor.system(default_job)


class RequestActorMiddleware:
    """Remember the request being served (permission changes are audited from signals)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)
