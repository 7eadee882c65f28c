"""Staff screens for settings: a typed editor per setting; every change goes through
the settings service (validated, audited, announced)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import cache
from typing import Any

from django import forms
from django.contrib import admin

from audit.actors import Actor
from pms_backend.admin_display import breakable, short_moment
from pms_backend.admin_mixins import AuditHistoryAdminMixin, ServiceRefusalAdminMixin
from pms_backend.errors import DomainError
from pms_backend.shopsettings import selectors, services
from pms_backend.shopsettings.models import Setting
from pms_backend.shopsettings.registry import (
    SCOPES,
    TUNABLES,
    Scope,
    SettingType,
    Tunable,
    scope_of,
)

MAX_OBJECTS_LISTED = 5


def _int_or_none(bound: int | Decimal | None) -> int | None:
    return None if bound is None else int(bound)


def value_field(tunable: Tunable, **kwargs) -> forms.Field:
    """Return the form field that edits a value of ``tunable``'s type."""
    kwargs.setdefault("required", False)
    kind = tunable.type
    if kind == SettingType.INT:
        return forms.IntegerField(
            min_value=_int_or_none(tunable.minimum),
            max_value=_int_or_none(tunable.maximum),
            **kwargs,
        )
    if kind == SettingType.DECIMAL:
        return forms.DecimalField(min_value=tunable.minimum, max_value=tunable.maximum, **kwargs)
    if kind == SettingType.BOOL:
        return forms.BooleanField(**kwargs)
    if kind == SettingType.JSON:
        return forms.JSONField(**kwargs)
    if kind == SettingType.SECRET or tunable.is_sensitive:
        kwargs.setdefault("help_text", "Never shown again; leave empty to keep the current one.")
        return forms.CharField(widget=forms.PasswordInput(render_value=False), **kwargs)
    return forms.CharField(max_length=tunable.max_length, strip=False, **kwargs)


class TypedValueForm(forms.ModelForm):
    """Edits one value of a setting in the field its type needs; the service checks it."""

    tunable: Tunable  # set on the class built for each setting

    def clean_typed_value(self, *, keep_allowed: bool) -> None:
        """Check ``value`` with the service; mark ``keep`` for an empty sensitive field."""
        value = self.cleaned_data.get("value")
        empty = value is None or (value == "" and self.tunable.type != SettingType.STRING)
        if self.tunable.is_sensitive and value in (None, "") and keep_allowed:
            self.cleaned_data["keep"] = True
            return
        if empty:
            self.add_error("value", "Enter a value.")
            return
        try:
            self.cleaned_data["value"] = services.setting_clean(self.tunable.key, value)
        except DomainError as exc:
            self.add_error("value", exc.errors.get("value") or exc.detail)

    def stored_value(self, row: Any) -> tuple[bool, Any]:  # a model with StoredJsonMixin
        text = "" if row._state.adding else row.stored_json()
        if not text or self.tunable.is_sensitive:
            return bool(text), None
        try:
            return True, self.tunable.load(text)
        except ValueError:
            return False, None


class SettingForm(TypedValueForm):
    use_default = forms.BooleanField(required=False, label="Use the default")

    class Meta:
        model = Setting
        fields: list[str] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.has_stored, stored = self.stored_value(self.instance)
        self.fields["use_default"].initial = not self.has_stored
        self.fields["value"].initial = stored if self.has_stored else self.tunable.default_value()
        if self.tunable.is_sensitive:
            self.fields["value"].initial = None

    def clean(self):
        cleaned = super().clean() or {}
        if cleaned.get("use_default"):
            cleaned["value"] = None
        else:
            self.clean_typed_value(keep_allowed=self.has_stored)
        return cleaned


class ObjectValueForm(TypedValueForm):
    """Edits a setting's value for one object of its scope (``scope.name`` names the
    object's field)."""

    scope: Scope  # set on the class built for each scope

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Saving the form moves the instance to the chosen object; remember the stored one.
        self.stored_object_id = (
            None if self.instance._state.adding else getattr(self.instance, f"{self.scope.name}_id")
        )
        self.has_stored, stored = self.stored_value(self.instance)
        if self.has_stored and not self.tunable.is_sensitive:
            self.fields["value"].initial = stored

    def clean(self):
        cleaned = super().clean() or {}
        if not cleaned.get("DELETE") and self.has_changed():
            chosen = cleaned.get(self.scope.name)
            moved = chosen is not None and chosen.pk != self.stored_object_id
            self.clean_typed_value(keep_allowed=self.has_stored and not moved)
        return cleaned


def _typed(form_class: type[TypedValueForm], tunable: Tunable) -> type[TypedValueForm]:
    return type(
        f"{form_class.__name__}For{tunable.key.title().replace('.', '').replace('_', '')}",
        (form_class,),
        {"tunable": tunable, "value": value_field(tunable, label="Value")},
    )


@cache
def object_value_inline(scope: Scope) -> type[admin.TabularInline]:
    """The inline that edits a setting's values for single objects of ``scope``."""
    meta = type("Meta", (), {"model": scope.value_model, "fields": [scope.name]})
    form = type(
        f"{scope.name.title()}ValueForm", (ObjectValueForm,), {"Meta": meta, "scope": scope}
    )

    class ObjectValueInline(admin.TabularInline):
        model = scope.value_model
        verbose_name = f"value for a {scope.name}"
        verbose_name_plural = f"values for single {scope.plural} (they beat the shop-wide value)"
        fields = [scope.name, "value"]
        autocomplete_fields = [scope.name]
        extra = 1

        def get_formset(self, request, obj=None, **kwargs):
            kwargs["form"] = _typed(form, TUNABLES[obj.key])
            return super().get_formset(request, obj, **kwargs)

    ObjectValueInline.__name__ = f"{scope.name.title()}ValueInline"
    return ObjectValueInline


@cache
def values_column(scope: Scope) -> Callable[[Setting], str]:
    """The change list's column listing the objects of ``scope`` with a value of their own."""

    def column(obj: Setting) -> str:
        tunable = TUNABLES[obj.key]
        if tunable.scope != scope.name:
            return "—"
        rows = sorted(
            (getattr(row, scope.name) for row in getattr(obj, scope.values_name).all()),
            key=scope.label,
        )
        if not rows:
            return "none"
        state = selectors.setting_state_of(obj)
        listed = ", ".join(
            f"{scope.label(row)} = {selectors.masked(tunable, state.object_values.get(row.pk))}"
            for row in rows[:MAX_OBJECTS_LISTED]
        )
        more = len(rows) - MAX_OBJECTS_LISTED
        return listed + (f" and {more} more" if more > 0 else "")

    column.__name__ = f"{scope.name}_values"  # the column's CSS class: column-product_values
    return admin.display(description=f"Per-{scope.name} values")(column)


@admin.register(Setting)
class SettingAdmin(ServiceRefusalAdminMixin, AuditHistoryAdminMixin, admin.ModelAdmin):
    # At 1,366 px: the type is on the setting's page, the date short.
    list_display = ["key_shown", "value_in_force", "default", "updated"]
    list_filter = ["type", "sensitive"]
    search_fields = ["key", "description"]
    fields = ["key", "description", "type", "sensitive", "default", "use_default", "value"]
    readonly_fields = ["key", "description", "type", "sensitive", "default"]

    def get_list_display(self, request):
        # One column per scope, after "default": e.g. "Products with their own value".
        columns = [values_column(scope) for scope in SCOPES.values()]
        return [*self.list_display[:-1], *columns, self.list_display[-1]]

    def get_queryset(self, request):
        # Rows of keys the registry no longer knows mean nothing: leave them out.
        return (
            super()
            .get_queryset(request)
            .filter(key__in=list(TUNABLES))
            .prefetch_related(*(f"{scope.values_name}__{scope.name}" for scope in SCOPES.values()))
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        return _typed(SettingForm, TUNABLES[obj.key])

    def get_inlines(self, request, obj):
        scope = scope_of(TUNABLES[obj.key]) if obj is not None else None
        return [object_value_inline(scope)] if scope is not None else []

    def has_add_permission(self, request) -> bool:
        return False  # the registry in code defines which settings exist

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # "Use the default" removes a value

    @admin.display(description="Value in force")
    def value_in_force(self, obj: Setting) -> Any:
        state = selectors.setting_state_of(obj)
        shown = selectors.masked(state.tunable, state.effective)
        return f"{shown} (default)" if not state.has_value else shown

    @admin.display(description="Key", ordering="key")
    def key_shown(self, obj: Setting) -> str:
        return breakable(obj.key)

    @admin.display(description="Changed", ordering="updated_at")
    def updated(self, obj: Setting) -> str:
        return short_moment(obj.updated_at)

    @admin.display(description="Default")
    def default(self, obj: Setting) -> Any:
        tunable = TUNABLES[obj.key]
        return selectors.masked(tunable, tunable.default_value())

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        actor = Actor.from_request(request)
        if data.get("use_default"):
            services.setting_reset(actor=actor, key=obj.key)
        elif not data.get("keep"):
            services.setting_set(actor=actor, key=obj.key, value=data["value"])

    def save_formset(self, request, form, formset, change):
        actor = Actor.from_request(request)
        key = form.instance.key
        # Django's own change message reads these; the audit log is the real record.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        ids = f"{formset.form.scope.name}_ids"  # product_ids for the product scope
        for row_form in formset.forms:
            data = getattr(row_form, "cleaned_data", None)
            if not data or not row_form.has_changed():
                continue
            before = row_form.stored_object_id
            chosen = data.get(formset.form.scope.name)
            if before is not None and (data.get("DELETE") or chosen.pk != before):
                services.setting_reset(actor=actor, key=key, **{ids: [before]})
            if data.get("DELETE") or chosen is None or data.get("keep"):
                continue
            services.setting_set(actor=actor, key=key, value=data["value"], **{ids: [chosen.pk]})
