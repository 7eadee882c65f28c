"""``{% newest_event_id %}``: where an admin page's live notices start (its socket asks the
server to replay what came after, so an order placed while staff move between pages still
shows up)."""

from django import template

from pms_backend.events.models import Event

register = template.Library()


@register.simple_tag
def newest_event_id() -> str:
    """Return the id of the newest event in the outbox, or an empty string."""
    return Event.objects.order_by("-pk").values_list("event_id", flat=True).first() or ""
