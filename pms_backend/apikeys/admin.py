"""Staff screens for API keys: create (the key is shown once), list, revoke (confirmed)."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import ngettext

from audit.actors import Actor
from pms_backend.admin_display import cut_to_fit, short_moment
from pms_backend.admin_mixins import AuditHistoryAdminMixin, ServiceRefusalAdminMixin
from pms_backend.apikeys import services
from pms_backend.apikeys.models import ApiKey
from pms_backend.apikeys.scopes import ALL_SCOPES, PRESETS
from pms_backend.secret_shown_once import secret_keep, secret_take

# The new key waits here, encrypted, between the creating POST and the one page that shows
# it: a reload of that page finds nothing (and creates nothing).
NEW_KEY_SESSION = "pms_new_api_key"


class ApiKeyCreateForm(forms.ModelForm):
    scope_choices = forms.MultipleChoiceField(
        label="Scopes",
        choices=[(p, f"preset: {p}") for p in PRESETS] + [(s, s) for s in ALL_SCOPES],
        widget=forms.CheckboxSelectMultiple,
    )
    expires_in_days = forms.IntegerField(
        min_value=1, max_value=3650, required=False, help_text="Leave empty for no expiry."
    )

    class Meta:
        model = ApiKey
        fields = ["name"]


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceRefusalAdminMixin, AuditHistoryAdminMixin, admin.ModelAdmin):
    # At 1,366 px: active, revoked and expired in one column, the dates short.
    list_display = ["key_name", "display_prefix", "scope_list", "state", "expires", "last_used"]
    list_filter = ["is_active"]
    search_fields = ["name", "prefix"]
    actions = ["revoke_selected"]
    readonly_fields = [
        "name",
        "prefix",
        "scopes",
        "is_active",
        "created_at",
        "created_by",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]

    @admin.display(description="Name", ordering="name")
    def key_name(self, obj: ApiKey) -> str:
        return cut_to_fit(obj.name, 32)

    @admin.display(description="Key")
    def display_prefix(self, obj: ApiKey) -> str:
        return f"pms_{obj.prefix}_…"

    @admin.display(description="Scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return cut_to_fit(", ".join(obj.scopes), 40)

    @admin.display(description="State")
    def state(self, obj: ApiKey) -> str:
        if obj.revoked_at is not None:
            return f"Revoked {short_moment(obj.revoked_at)}"
        if not obj.is_active:
            return "Inactive"
        if obj.expires_at is not None and obj.expires_at <= timezone.now():
            return "Expired"
        return "Active"

    @admin.display(description="Expires", ordering="expires_at")
    def expires(self, obj: ApiKey) -> str:
        return short_moment(obj.expires_at) or "never"

    @admin.display(description="Last used", ordering="last_used_at")
    def last_used(self, obj: ApiKey) -> str:
        return short_moment(obj.last_used_at) or "never"

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "scope_choices", "expires_in_days"]
        return self.readonly_fields

    def has_change_permission(self, request, obj=None) -> bool:
        # Keys are immutable once made: revoke and create a new one instead.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_revoke_permission(self, request) -> bool:
        """Revoking needs the change permission (the bulk action asks for the same)."""
        return self.has_change_permission(request)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:object_id>/created/",
                view(self.created_view),
                name="apikeys_apikey_created",
            ),
            path(
                "<int:object_id>/revoke/",
                view(self.revoke_view),
                name="apikeys_apikey_revoke",
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_revoke"] = (
            obj is not None and obj.revoked_at is None and self.has_revoke_permission(request)
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- Creating: POST, then redirect to the one page that shows the key -----------------

    def save_model(self, request, obj, form, change):
        days = form.cleaned_data.get("expires_in_days")
        key, raw = services.api_key_create(
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scope_choices"],
            expires_at=timezone.now() + timedelta(days=days) if days else None,
            actor=Actor.from_request(request),
        )
        obj.pk = key.pk
        obj.prefix = key.prefix
        request.pms_new_raw_key = raw

    def response_add(self, request, obj, post_url_continue=None):
        secret_keep(
            request,
            slot=NEW_KEY_SESSION,
            obj=obj,
            secret=request.pms_new_raw_key,
            binding=obj.prefix,
        )
        return HttpResponseRedirect(reverse("admin:apikeys_apikey_created", args=[obj.pk]))

    def created_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        key = get_object_or_404(ApiKey, pk=object_id)
        return TemplateResponse(
            request,
            "apikeys/key_created.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "key": key,
                "raw_key": secret_take(request, slot=NEW_KEY_SESSION, obj=key, binding=key.prefix),
                "title": "API key created",
            },
        )

    # --- Revoking: always after a confirmation page -------------------------------------

    def revoke_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if not self.has_revoke_permission(request):
            raise PermissionDenied
        key = get_object_or_404(ApiKey, pk=object_id)
        change_url = reverse("admin:apikeys_apikey_change", args=[key.pk])
        if key.revoked_at is not None:
            self.message_user(
                request, f"The API key “{key.name}” is already revoked.", messages.WARNING
            )
            return HttpResponseRedirect(change_url)
        if request.method == "POST" and request.POST.get("post") == "yes":
            services.api_key_revoke(prefix=key.prefix, actor=Actor.from_request(request))
            self.message_user(
                request,
                f"Revoked the API key “{key.name}”: requests presenting it are refused "
                "from now on.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(change_url)
        return self._revoke_confirmation(request, [key], cancel_url=change_url)

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_selected(self, request, queryset):
        keys = list(queryset)
        if request.POST.get("post") != "yes":
            return self._revoke_confirmation(
                request, keys, cancel_url=reverse("admin:apikeys_apikey_changelist")
            )
        actor = Actor.from_request(request)
        live = [key for key in keys if key.revoked_at is None]
        for key in live:
            services.api_key_revoke(prefix=key.prefix, actor=actor)
        message = ngettext(
            "Revoked %(count)d API key.", "Revoked %(count)d API keys.", len(live)
        ) % {"count": len(live)}
        already = len(keys) - len(live)
        if already:
            message += " " + ngettext(
                "%(count)d was already revoked.", "%(count)d were already revoked.", already
            ) % {"count": already}
        self.message_user(request, message, messages.SUCCESS)
        return None

    def _revoke_confirmation(
        self, request: HttpRequest, keys: list[ApiKey], *, cancel_url: str
    ) -> TemplateResponse:
        single = len(keys) == 1
        return TemplateResponse(
            request,
            "apikeys/revoke_confirmation.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Revoke this API key?" if single else "Revoke these API keys?",
                "keys": keys,
                "live_count": sum(key.revoked_at is None for key in keys),
                "bulk": request.POST.get("action") == "revoke_selected",
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "cancel_url": cancel_url,
            },
        )
