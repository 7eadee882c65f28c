"""What the outbox carries and who takes it: event topics and the relay's subscribers.

The platform names no domain: each app registers its topics (their event types, the
scope that reads them, who hears them live) and the webhooks app subscribes to the
relay, from their ``AppConfig.ready()``. The outbox, the relay, the websocket fan-out
and the webhooks read them here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pms_backend.apikeys.scopes import ALL_SCOPES

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from pms_backend.events.models import Event

# Given a batch of one topic's events, a rule returns its answer for each of them: the
# batch lets the rule look up what it needs in one query.
PublicRule = Callable[[Sequence["Event"]], Callable[["Event"], bool]]
OwnerRule = Callable[[Sequence["Event"]], Callable[["Event"], "str | None"]]


@dataclass(frozen=True)
class Topic:
    """A family of event types and its audiences.

    Every event goes to its topic's full websocket group, which staff and keys holding
    ``full_scope`` join. Keys without it join the public group when the topic has a
    ``public`` rule (the events it lets through, as the storefront may see them) or
    their own group when it has an ``owner`` rule (the events about objects the key
    owns, without personal data; the rule returns the owning key's prefix).
    """

    name: str
    event_types: tuple[str, ...]
    # Reads the topic's data: subscribing a webhook endpoint or a websocket to it.
    read_scope: str
    full_scope: str
    public: PublicRule | None = None
    owner: OwnerRule | None = None
    # False: webhooks only (no websocket subscription).
    live: bool = True
    # Sent to a webhook endpoint only when it names the type: an endpoint taking "every
    # event" (no event_types) is a shop's receiver, not, say, an operator's anchor store.
    opt_in: bool = False
    # Its events may carry personal data (sealed at rest; see Event.seal_personal).
    personal: bool = False
    # Data fields the public group (storefronts) never hears: what only ``full_scope``
    # holders may learn, such as where stock changed.
    public_omits: tuple[str, ...] = ()


_topics: dict[str, Topic] = {}
# Event type -> topic name, for every registered topic (kept as topics register).
EVENT_TOPICS: dict[str, str] = {}


def register_topic(topic: Topic) -> None:
    """Add ``topic``; registering it again (a reloaded app) replaces it."""
    for event_type in topic.event_types:
        owner = EVENT_TOPICS.get(event_type)
        if owner is not None and owner != topic.name:
            raise ValueError(f"event type {event_type!r} already belongs to topic {owner!r}")
    _topics[topic.name] = topic
    for event_type in topic.event_types:
        EVENT_TOPICS[event_type] = topic.name


def topics() -> list[Topic]:
    """Return the registered topics in the order of the scopes that read them."""
    order = {scope: position for position, scope in enumerate(ALL_SCOPES)}
    return sorted(_topics.values(), key=lambda t: order.get(t.read_scope, len(order)))


def topic(name: str) -> Topic | None:
    return _topics.get(name)


def live_topics() -> list[Topic]:
    """Return the topics a websocket may subscribe to."""
    return [t for t in topics() if t.live]


def event_types() -> list[str]:
    """Return every registered event type, sorted."""
    return sorted(EVENT_TOPICS)


def event_type_choices() -> list[tuple[str, str]]:
    return [(t, t) for t in event_types()]


def is_opt_in(event_type: str) -> bool:
    """Return whether ``event_type`` reaches only webhook endpoints that name it."""
    found = _topics.get(EVENT_TOPICS.get(event_type, ""))
    return found is not None and found.opt_in


def personal_topics() -> list[str]:
    """Return the names of the topics whose events may carry personal data."""
    return [t.name for t in topics() if t.personal]


def event_type_read_scopes(event_types: Iterable[str]) -> dict[str, str]:
    """Return ``{event type: the scope that reads it}`` for ``event_types``; an empty list
    means every event type (an endpoint without event types receives them all)."""
    # "Every event" leaves out the opt-in types: their scopes are not needed for it.
    wanted = list(event_types) or [t for t in EVENT_TOPICS if not is_opt_in(t)]
    return {t: _topics[EVENT_TOPICS[t]].read_scope for t in wanted}


# --- the relay's subscribers ------------------------------------------------------------


@dataclass(frozen=True)
class OutboxSubscriber:
    """Something the relay hands every dispatched event to (the webhooks app)."""

    name: str
    # Called in the dispatch transaction with the events being dispatched (in order):
    # records what the subscriber owes them and returns what to do once that commits.
    take: Callable[[list[Event]], Callable[[], None]]
    # The ids of events the subscriber still needs (a ``values("event_id")`` queryset):
    # the outbox keeps them past their retention.
    holds: Callable[[], QuerySet] | None = None


_subscribers: dict[str, OutboxSubscriber] = {}


def register_subscriber(subscriber: OutboxSubscriber) -> None:
    """Subscribe to the relay; registering the same name again replaces it."""
    _subscribers[subscriber.name] = subscriber


def subscribers() -> list[OutboxSubscriber]:
    return list(_subscribers.values())
