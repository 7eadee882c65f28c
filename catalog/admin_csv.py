"""The product list's CSV import and export, on django-import-export's screens.

django-import-export supplies the steps staff know: upload, a dry-run preview with the
errors of each row, confirm. Reading, checking and writing stay ``catalog.importing``'s,
exactly as for ``manage.py import_products``: the uploaded bytes go to it untouched
(not through tablib), and the export streams ``catalog.exporting``'s CSV. Between preview
and confirmation the upload waits in ``catalog.admin_uploads``, bound to the session.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import reverse
from django.utils.html import format_html
from import_export import resources
from import_export.admin import ImportExportMixin
from import_export.fields import Field
from import_export.formats.base_formats import Format
from import_export.forms import ConfirmImportForm, ExportForm, ImportForm
from import_export.results import Error, Result, RowResult

from audit.actors import Actor
from catalog.admin_uploads import (
    UploadRefused,
    upload_read,
    upload_store,
    upload_take,
    upload_ticket,
)
from catalog.csv_columns import VARIANT_COLUMNS
from catalog.exporting import export_csv
from catalog.importing import COLUMNS, ImportRejected, ImportReport, product_import
from catalog.models import Product
from pms_backend.errors import DomainError

PREVIEW_ROWS = 500


@dataclass
class CsvUpload:
    """The uploaded file's bytes, standing where django-import-export expects a dataset."""

    data: bytes

    def __bool__(self) -> bool:
        return bool(self.data.strip())


@dataclass
class _StoredUpload:
    """The stored upload, as the library's import screen expects a temporary storage."""

    name: str

    def read(self) -> bytes:
        return upload_read(self.name)


class ProductCsv(Format):
    """The products CSV of docs/import-export.md, parsed by ``catalog.importing``."""

    def __init__(self, encoding: str | None = None) -> None:
        self.encoding = encoding  # unused: catalog.importing reads UTF-8 bytes itself

    def get_title(self) -> str:
        return "csv"

    def create_dataset(self, in_stream: bytes) -> CsvUpload:
        return CsvUpload(in_stream)

    def get_extension(self) -> str:
        return "csv"

    def get_content_type(self) -> str:
        return "text/csv; charset=utf-8"

    def can_import(self) -> bool:
        return True

    def can_export(self) -> bool:
        return True


class ProductCsvResource(resources.ModelResource):
    """Names the columns for the screens; the work is ``product_import``'s."""

    sku = Field(column_name="sku")
    name = Field(column_name="name")
    slug = Field(column_name="slug")
    description = Field(column_name="description")
    price = Field(column_name="price")
    currency = Field(column_name="currency")
    category = Field(column_name="category")
    status = Field(column_name="status")
    on_hand = Field(column_name="on_hand")
    attributes = Field(column_name="attributes")

    class Meta:
        model = Product
        name = "Products (CSV)"
        fields = COLUMNS
        import_id_fields = ("sku",)

    def import_data(self, dataset, dry_run=False, raise_errors=False, **kwargs) -> Result:
        """Run ``product_import`` on the upload and describe the outcome as a ``Result``."""
        result = Result()
        result.diff_headers = list(COLUMNS)
        try:
            report = product_import(
                actor=kwargs["actor"],
                source=io.BytesIO(dataset.data),
                file_name=kwargs.get("file_name") or "upload.csv",
                dry_run=dry_run,
                create_categories=kwargs.get("create_categories", False),
                preview_limit=PREVIEW_ROWS,
                max_bytes=settings.PMS_ADMIN_IMPORT_MAX_BYTES,
            )
        except ImportRejected as exc:
            _invalid_rows(result, exc.report)
            return result
        except DomainError as exc:
            result.append_base_error(Error(exc))
            return result
        _preview(result, report)
        return result


def _invalid_rows(result: Result, report: ImportReport) -> None:
    by_line: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    cells: dict[int, dict[str, str]] = {}
    for error in report.errors:
        by_line[error.line][error.column or NON_FIELD_ERRORS].append(error.message)
        cells.setdefault(error.line, error.cells)
    for line, errors in sorted(by_line.items()):
        result.append_invalid_row(line, cells[line], ValidationError(dict(errors)))
    result.totals[RowResult.IMPORT_TYPE_INVALID] = report.error_count
    result.pms_report = report


def _preview(result: Result, report: ImportReport) -> None:
    result.pms_report = report
    columns = list(COLUMNS)
    if any(row.values.get("product_sku") for row in report.preview):
        columns += VARIANT_COLUMNS  # a variant's own columns, shown when the file has any
        result.diff_headers = columns
    result.totals[RowResult.IMPORT_TYPE_NEW] = report.created
    result.totals[RowResult.IMPORT_TYPE_UPDATE] = report.updated + report.extra_only
    result.totals[RowResult.IMPORT_TYPE_SKIP] = report.unchanged
    for row in report.preview:
        row_result = RowResult()
        row_result.import_type = (
            RowResult.IMPORT_TYPE_NEW if row.action == "new" else RowResult.IMPORT_TYPE_UPDATE
        )
        row_result.object_repr = row.sku
        row_result.diff = [
            format_html("<del>{}</del> <ins>{}</ins>", *row.changes[column])
            if column in row.changes
            else row.values.get(column, "")
            for column in columns
        ]
        result.append_row_result(row_result)


class ProductImportForm(ImportForm):
    create_categories = forms.BooleanField(
        required=False,
        label="Create missing categories",
        help_text="Otherwise a category path that does not exist is an error.",
    )

    def clean_import_file(self):
        upload = self.cleaned_data["import_file"]
        limit = settings.PMS_ADMIN_IMPORT_MAX_BYTES
        if upload.size > limit:
            raise ValidationError(
                f"The file is {upload.size / 1024 / 1024:.1f} MB; the admin takes up to "
                f"{limit / 1024 / 1024:g} MB. Use manage.py import_products for larger files."
            )
        return upload


class ProductConfirmImportForm(ConfirmImportForm):
    create_categories = forms.BooleanField(required=False, widget=forms.HiddenInput)


class ProductCsvAdminMixin(ImportExportMixin):
    """Import and export buttons on the product list, wired to our importer and exporter."""

    resource_classes = [ProductCsvResource]
    import_form_class = ProductImportForm
    confirm_form_class = ProductConfirmImportForm
    export_form_class = ExportForm
    import_template_name = "admin/catalog/product/import.html"
    skip_admin_log = True  # the audit log has the import; Django's LogEntry is not used

    @property
    def formats(self):
        return [ProductCsv]

    def has_import_permission(self, request) -> bool:
        return request.user.has_perms(
            ["catalog.add_product", "catalog.change_product", "inventory.add_inventorymovement"]
        )

    def has_export_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def create_import_form(self, request):
        form = super().create_import_form(request)
        if not request.user.has_perm("catalog.add_category"):
            del form.fields["create_categories"]
        return form

    def get_confirm_form_initial(self, request, import_form):
        initial = super().get_confirm_form_initial(request, import_form)
        if import_form is not None:
            initial["create_categories"] = import_form.cleaned_data.get("create_categories")
            # The client carries a ticket valid for this session only (catalog.admin_uploads).
            initial["import_file_name"] = upload_ticket(
                request, initial["import_file_name"], initial["original_file_name"]
            )
        return initial

    def get_import_data_kwargs(self, **kwargs):
        request, form = kwargs["request"], kwargs.get("form")
        kwargs = super().get_import_data_kwargs(**kwargs)
        kwargs["actor"] = Actor.from_request(request)
        kwargs["create_categories"] = bool(
            form is not None
            and form.cleaned_data.get("create_categories")
            and request.user.has_perm("catalog.add_category")
        )
        return kwargs

    def write_to_tmp_storage(self, import_file, input_format):
        return _StoredUpload(upload_store(b"".join(import_file.chunks())))

    def process_import(self, request, **kwargs):
        """Import the upload the confirmation's ticket names, if it is this session's.

        Replaces the library's version, which reads any file the client names.
        """
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = self.create_confirm_form(request)
        try:
            if not form.is_valid():
                raise UploadRefused
            data, file_name = upload_take(request, form.cleaned_data["import_file_name"])
        except UploadRefused:
            messages.error(
                request,
                "Nothing was imported: this confirmation does not belong to an upload of "
                "yours in this session (or it was already imported or has expired). "
                "Upload the file again.",
            )
            return HttpResponseRedirect(
                reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_import")
            )
        result = self.process_dataset(CsvUpload(data), form, request, file_name=file_name, **kwargs)
        return self.process_result(result, request)

    def process_result(self, result, request):
        report = getattr(result, "pms_report", None)
        if result.has_errors() or result.has_validation_errors() or report is None:
            # The catalog changed between preview and confirm; nothing was written.
            errors = [str(e) for e in report.errors[:10]] if report else []
            messages.error(
                request,
                "Nothing was imported: " + ("; ".join(errors) or "the import failed."),
            )
            return HttpResponseRedirect(
                reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_import")
            )
        return super().process_result(result, request)

    def add_success_message(self, result, request):
        messages.success(request, result.pms_report.summary())

    def _do_file_export(self, file_format, request, queryset, export_form=None):
        """Stream the CSV (the library would build the whole file in memory first)."""
        response = StreamingHttpResponse(
            export_csv(queryset), content_type=ProductCsv().get_content_type()
        )
        filename = self.get_export_filename(request, queryset, ProductCsv())
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
