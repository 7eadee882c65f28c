"""Staff screens for webhooks: endpoints (secret shown once), deliveries, redelivery."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import ngettext

from audit.actors import Actor
from pms_backend.admin_display import cut_to_fit, short_moment
from pms_backend.admin_mixins import AuditHistoryAdminMixin, ServiceRefusalAdminMixin
from pms_backend.events.registry import event_type_choices
from pms_backend.outbound.addresses import DisallowedDestination, check_url
from pms_backend.outbound.client import circuit_state
from pms_backend.secret_shown_once import secret_keep, secret_take
from webhooks import services
from webhooks.models import DeliveryAttempt, WebhookDelivery, WebhookEndpoint

# A new or rotated signing secret waits here, encrypted, between the POST and the one page
# that shows it: a reload of that page creates or rotates nothing, and shows nothing.
NEW_SECRET_SESSION = "pms_new_webhook_secret"  # noqa: S105  (a session key, not a secret)


class EndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=event_type_choices,  # read when a form is built: apps register topics
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types", "is_active", "encrypt"]

    def clean_url(self) -> str:
        # The service refuses it too; checked here, the refusal sits on the field.
        url = self.cleaned_data["url"]
        try:
            check_url(url)
        except DisallowedDestination as exc:
            raise forms.ValidationError(f"Webhook URL refused: {exc}.") from exc
        return url

    actor: Actor | None = None  # set by WebhookEndpointAdmin.get_form

    def clean(self):
        cleaned = super().clean() or {}
        if self.actor is not None and "event_types" in cleaned:
            # A staff member subscribes an endpoint only to data their groups may view.
            missing = services.topics_out_of_reach(self.actor, cleaned["event_types"])
            if missing:
                self.add_error(
                    "event_types",
                    "You may not view the data of: "
                    + ", ".join(sorted(missing) if cleaned["event_types"] else ["every event"])
                    + " (needs "
                    + ", ".join(sorted(set(missing.values())))
                    + ").",
                )
        return cleaned


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceRefusalAdminMixin, AuditHistoryAdminMixin, admin.ModelAdmin):
    form = EndpointForm
    # At 1,366 px: where, what for, how it is doing; active, circuit and the reason it was
    # disabled are read in the health column, whether it encrypts on its page.
    list_display = ["url_shown", "description_shown", "health", "last_success"]
    list_filter = ["is_active", "encrypt"]
    search_fields = ["url", "description"]
    readonly_fields = ["failing_since", "last_success_at", "disabled_at", "disabled_reason"]
    actions = ["rotate_secret"]

    @admin.display(description="URL", ordering="url")
    def url_shown(self, obj: WebhookEndpoint) -> str:
        return cut_to_fit(obj.url, 48)

    @admin.display(description="Description", ordering="description")
    def description_shown(self, obj: WebhookEndpoint) -> str:
        return cut_to_fit(obj.description, 40)

    @admin.display(description="Health")
    def health(self, obj: WebhookEndpoint) -> str:
        if not obj.is_active:
            return format_html(
                '<strong style="color:#ba2121" title="{}">disabled</strong>',
                obj.disabled_reason or "disabled by staff",
            )
        if obj.failing_since:
            state = format_html(
                '<strong style="color:#b8860b">failing since {}</strong>',
                short_moment(obj.failing_since),
            )
        else:
            state = format_html("{}", "healthy")
        circuit = circuit_state(obj.url)["state"]
        if circuit == "closed":
            return state
        # Deliveries to its address wait until the circuit closes again.
        return format_html("{}; circuit {}", state, circuit)

    @admin.display(description="Last success", ordering="last_success_at")
    def last_success(self, obj: WebhookEndpoint) -> str:
        return short_moment(obj.last_success_at) or "never"

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = Actor.from_request(request)  # type: ignore[attr-defined]  # a class made for this request
        return form

    def save_model(self, request, obj, form, change):
        actor = Actor.from_request(request)
        if change:
            data = {name: form.cleaned_data[name] for name in form.changed_data}
            services.endpoint_update(actor=actor, endpoint_id=obj.pk, data=data)
        else:
            endpoint, secret = services.endpoint_create(actor=actor, **form.cleaned_data)
            obj.pk = endpoint.pk
            request.pms_new_secret = secret

    def delete_model(self, request, obj):
        services.endpoint_delete(actor=Actor.from_request(request), endpoint_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            self.delete_model(request, endpoint)

    def get_urls(self):
        return [
            path(
                "<uuid:object_id>/secret/",
                self.admin_site.admin_view(self.secret_view),
                name="webhooks_webhookendpoint_secret",
            ),
            *super().get_urls(),
        ]

    def response_add(self, request, obj, post_url_continue=None):
        return self._to_secret_page(request, obj, request.pms_new_secret)

    def _to_secret_page(self, request, endpoint: WebhookEndpoint, secret: str):
        # The page that shows it is a GET: reloading it sends nothing again.
        secret_keep(request, slot=NEW_SECRET_SESSION, obj=endpoint, secret=secret)
        return HttpResponseRedirect(
            reverse("admin:webhooks_webhookendpoint_secret", args=[endpoint.pk])
        )

    def secret_view(self, request: HttpRequest, object_id: uuid.UUID) -> HttpResponse:
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        endpoint = get_object_or_404(WebhookEndpoint, pk=object_id)
        secret = secret_take(request, slot=NEW_SECRET_SESSION, obj=endpoint)
        # Someone who may only add endpoints sees the one they just made, never another's
        # (its URL may carry a token).
        if secret is None and not self.has_view_or_change_permission(request, endpoint):
            raise PermissionDenied
        return TemplateResponse(
            request,
            "webhooks/secret_shown.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "endpoint": endpoint,
                "secret": secret,
                "title": "Webhook signing secret",
            },
        )

    @admin.action(description="Rotate the signing secret", permissions=["change"])
    def rotate_secret(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Rotate one endpoint at a time.", messages.WARNING)
            return None
        endpoint, secret = services.endpoint_rotate_secret(
            actor=Actor.from_request(request), endpoint_id=queryset.get().pk
        )
        return self._to_secret_page(request, endpoint, secret)


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = readonly_fields = (
        "attempted_at",
        "status_code",
        "latency_ms",
        "error",
        "response_excerpt",
    )
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    # At 1,366 px: the event's type (its ID and payload on the delivery's page), the
    # endpoint cut to fit, the dates short.
    list_display = [
        "event_type",
        "endpoint_shown",
        "status",
        "attempts",
        "last_response",
        "next_try",
        "created",
    ]
    list_display_links = ["event_type"]
    list_filter = ["status", "event__type", "endpoint"]
    list_select_related = ["event", "endpoint"]
    search_fields = ["event__event_id"]
    search_help_text = "An event's ID."
    inlines = [AttemptInline]
    actions = ["redeliver"]
    show_full_result_count = False

    @admin.display(description="Event", ordering="event__type")
    def event_type(self, obj: WebhookDelivery) -> str:
        return format_html('<span title="{}">{}</span>', obj.event.event_id, obj.event.type)

    @admin.display(description="Endpoint", ordering="endpoint__url")
    def endpoint_shown(self, obj: WebhookDelivery) -> str:
        return cut_to_fit(str(obj.endpoint), 36)

    @admin.display(description="Attempts", ordering="attempt_count")
    def attempts(self, obj: WebhookDelivery) -> int:
        return obj.attempt_count

    @admin.display(description="Last answer", ordering="last_status_code")
    def last_response(self, obj: WebhookDelivery) -> str:
        return f"HTTP {obj.last_status_code}" if obj.last_status_code else "none"

    @admin.display(description="Next try", ordering="next_attempt_at")
    def next_try(self, obj: WebhookDelivery) -> str:
        return short_moment(obj.next_attempt_at)

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj: WebhookDelivery) -> str:
        return short_moment(obj.created_at)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Send again now", permissions=["view"])
    def redeliver(self, request, queryset):
        count = services.delivery_redeliver(
            actor=Actor.from_request(request),
            delivery_ids=list(queryset.values_list("pk", flat=True)),
        )
        message = ngettext(
            "%(count)d delivery queued again.", "%(count)d deliveries queued again.", count
        ) % {"count": count}
        self.message_user(request, message, messages.SUCCESS)
