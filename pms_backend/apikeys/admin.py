"""Staff screens for API keys: create (the key is shown once), list, revoke."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone

from audit.actors import Actor
from pms_backend.admin_mixins import AuditHistoryAdminMixin, ServiceRefusalAdminMixin
from pms_backend.apikeys import services
from pms_backend.apikeys.models import ApiKey
from pms_backend.apikeys.scopes import ALL_SCOPES, PRESETS


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
    list_display = [
        "name",
        "display_prefix",
        "scope_list",
        "is_active",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
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

    @admin.display(description="Key")
    def display_prefix(self, obj: ApiKey) -> str:
        return f"pms_{obj.prefix}_…"

    @admin.display(description="Scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, **kwargs)

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

    def save_model(self, request, obj, form, change):
        days = form.cleaned_data.get("expires_in_days")
        key, raw = services.api_key_create(
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scope_choices"],
            expires_at=timezone.now() + timedelta(days=days) if days else None,
            actor=Actor.from_request(request),
        )
        obj.pk = key.pk
        request.pms_new_raw_key = raw

    def response_add(self, request, obj, post_url_continue=None):
        # Rendered, not put in a message: messages travel in cookies and sessions.
        return TemplateResponse(
            request,
            "apikeys/key_created.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "key": ApiKey.objects.get(pk=obj.pk),
                "raw_key": request.pms_new_raw_key,
                "title": "API key created",
            },
        )

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_selected(self, request, queryset):
        for key in queryset:
            services.api_key_revoke(prefix=key.prefix, actor=Actor.from_request(request))
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)
