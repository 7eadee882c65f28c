"""The audit log's event topic: the chain's anchor after each seal, to keep outside."""

from pms_backend.apikeys import scopes
from pms_backend.events.registry import Topic, register_topic

register_topic(
    Topic(
        name="audit",
        event_types=("audit.sealed",),
        read_scope=scopes.AUDIT_READ,
        # Anchors only, to whoever reads the audit log.
        full_scope=scopes.AUDIT_READ,
        # An operator's anchor store names it; a shop's "every event" receiver does not.
        opt_in=True,
    )
)
