"""``{% staff_dashboard request as dashboard %}``: the admin index's metrics, per user."""

from django import template

from pms_backend.monitoring.dashboard import dashboard_for

register = template.Library()


@register.simple_tag
def staff_dashboard(request) -> dict:
    return dashboard_for(request.user, days_param=request.GET.get("days"))
