"""Who did something: a staff user, an API key, a system job or an anonymous client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest


# The classes of API key that DRF's authentication puts in ``request.auth``: the app
# that stores keys registers them (audit records who acted, not how keys are kept).
_api_key_types: tuple[type, ...] = ()


def register_api_key_type(cls: type) -> None:
    """Let :meth:`Actor.from_request` take a ``request.auth`` of class ``cls`` as the
    acting API key."""
    global _api_key_types
    if cls not in _api_key_types:
        _api_key_types = (*_api_key_types, cls)


@dataclass(frozen=True)
class Actor:
    """The author of a business action, as the audit log records it."""

    user: Any = None
    api_key: Any = None
    job: str = ""
    request_id: str = ""
    ip: str | None = None

    @property
    def kind(self) -> str:
        if self.api_key is not None:
            return "api_key"
        if self.user is not None:
            return "user"
        return "system" if self.job else "anonymous"

    @property
    def label(self) -> str:
        if self.api_key is not None:
            return f"api_key:{self.api_key.prefix} ({self.api_key.name})"
        if self.user is not None:
            return f"user:{self.user.get_username()}"
        if self.job:
            return f"job:{self.job}"
        return f"anonymous@{self.ip or 'unknown'}"

    @classmethod
    def system(cls, job: str) -> Actor:
        return cls(job=job)

    @classmethod
    def from_request(cls, request: HttpRequest) -> Actor:
        """Build the actor of an API or admin request (API key wins over the session)."""
        auth = getattr(request, "auth", None)
        user = getattr(request, "user", None)
        api_key = auth if isinstance(auth, _api_key_types) else None
        if api_key is not None or not (user is not None and user.is_authenticated):
            user = None
        return cls(
            user=user,
            api_key=api_key,
            request_id=getattr(request, "request_id", ""),
            ip=request.META.get("REMOTE_ADDR") or None,
        )
